"""Small, dependency-free statistics: percentiles, rates, binning."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50, 90, 95, 99, 99.9)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low))


def summarize(values: Iterable[float], *, scale: float = 1000.0) -> dict[str, float | int]:
    """count, mean, min, max and the usual percentiles; ``scale`` 1000 turns s into ms."""
    data = sorted(values)
    if not data:
        return {"count": 0}
    out: dict[str, float | int] = {
        "count": len(data),
        "mean": round(sum(data) / len(data) * scale, 2),
        "min": round(data[0] * scale, 2),
        "max": round(data[-1] * scale, 2),
    }
    for p in PERCENTILES:
        out[f"p{p:g}"] = round(percentile(data, p) * scale, 2)
    return out


def per_second(
    timestamps: Iterable[float], start: float, end: float, width: float = 1.0
) -> list[float]:
    """Events per second in consecutive bins of ``width`` seconds from ``start``."""
    bins = [0] * max(1, math.ceil((end - start) / width))
    for t in timestamps:
        index = int((t - start) // width)
        if 0 <= index < len(bins):
            bins[index] += 1
    return [count / width for count in bins]


def windowed_percentiles(
    points: Iterable[tuple[float, float]],
    start: float,
    end: float,
    width: float,
    ps: Sequence[float] = (50, 95, 99),
) -> list[dict[str, float]]:
    """Percentiles of (time, value) points per window; value in seconds, result in ms."""
    windows: list[list[float]] = [[] for _ in range(max(1, math.ceil((end - start) / width)))]
    for t, value in points:
        index = int((t - start) // width)
        if 0 <= index < len(windows):
            windows[index].append(value)
    out = []
    for i, values in enumerate(windows):
        values.sort()
        row = {"t": round(i * width + width / 2, 2), "n": len(values)}
        for p in ps:
            row[f"p{p:g}"] = round(percentile(values, p) * 1000, 2) if values else math.nan
        out.append(row)
    return out


def rnd(value: float, digits: int = 1) -> float:
    return round(value, digits) if value == value else value  # NaN stays NaN
