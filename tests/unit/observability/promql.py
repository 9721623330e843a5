"""Just enough PromQL reading for the checks here: the metric names an expression uses,
and a dashboard expression with Grafana's variables filled in so promtool can parse it."""

from __future__ import annotations

import re

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)

# Grafana's variables, as the dashboard's queries use them, with values a query could get.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$service": ".*",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names,
    strings, durations and numbers left out)."""
    rest = _STRINGS.sub('""', expr)
    rest = _MATCHERS.sub(" ", rest)
    rest = _RANGES.sub(" ", rest)
    rest = _GROUPING.sub(" ", rest)
    names = set()
    for match in _NAME.finditer(rest):
        word = match.group()
        called = rest[match.end() :].lstrip().startswith("(")
        if not called and word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def fill_grafana_variables(expr: str) -> str:
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    leftover = re.findall(r"\$\w+", expr)
    if leftover:
        raise ValueError(f"unknown Grafana variable(s) {leftover} in {expr}")
    return expr


def label_values_metric(query: str) -> str | None:
    """The selector of a Grafana ``label_values(<selector>, <label>)`` variable query."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
    return match.group(1) if match else None
