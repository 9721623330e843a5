"""The benchmark's own arithmetic, checked without any server: ``uv run --group bench
pytest bench/tests``. The scenarios themselves are run, not tested."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from bench import report
from bench.profile import bucket, summarize
from bench.scenarios.floor import ceiling
from bench.smtp_sink import Handler
from bench.stats import per_second, percentile, windowed_percentiles
from bench.stats import summarize as stats_summary


def test_percentile_interpolates_like_numpy() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    assert percentile(data, 50) == 2.5
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_summary_is_in_milliseconds() -> None:
    s = stats_summary([0.001, 0.002, 0.003])
    assert s["count"] == 3
    assert s["p50"] == 2.0
    assert s["max"] == 3.0
    assert stats_summary([]) == {"count": 0}


def test_per_second_bins_and_drops_outside() -> None:
    assert per_second([10.1, 10.2, 11.5, 9.0, 13.0], 10.0, 12.0) == [2.0, 1.0]


def test_windowed_percentiles() -> None:
    rows = windowed_percentiles([(0.5, 0.1), (1.5, 0.2), (1.6, 0.4)], 0, 2, 1)
    assert rows[0]["n"] == 1
    assert rows[0]["p50"] == 100.0
    assert rows[1]["p50"] == pytest.approx(300.0)


def test_ceiling_adds_the_times_of_shared_resources() -> None:
    raw = {
        "postgres": {"connections_1": {"rate": 100.0}, "connections_16": {"rate": 1000.0}},
        "rabbitmq": {
            "quorum": {
                "publish_window_1": {"rate": 200.0},
                "publish_window_64": {"rate": 600.0},
                "consume_ack": {"rate": 700.0},
            }
        },
    }
    work = {
        "commits_per_order": 10.0,
        "broker": {"publishes_per_order": 6.0, "deliveries_per_order": 7.0},
    }
    c = ceiling(raw, work)
    assert c["per_resource"] == {"postgres": 100.0, "publish": 100.0, "consume": 100.0}
    assert c["min_single_resource"] == 100.0
    assert c["combined"] == pytest.approx(33.3, abs=0.1)


def test_profile_summary_buckets_by_innermost_frame(tmp_path: Path) -> None:
    raw = tmp_path / "svc.txt"
    raw.write_text(
        "main (app.py:1);execute (site-packages/sqlalchemy/engine/base.py:10) 3\n"
        "main (app.py:1);fetch (site-packages/asyncpg/prepared_stmt.py:5) 1\n"
    )
    s = summarize(raw)
    assert s["samples"] == 4
    assert s["by_library"] == {"sqlalchemy": 0.75, "asyncpg": 0.25}
    assert s["top_self"][0]["frame"] == "execute (sqlalchemy/engine/base.py)"
    assert bucket("/x/libs/events/src/events/outbox.py") == "events (shop lib)"


def test_report_rows_survive_a_failed_scenario() -> None:
    rows = report.summary_rows({"burst": {"error": "boom"}})
    assert rows == [("burst", "error", "boom")]


def test_sink_reads_the_order_and_kind_headers(capsys: pytest.CaptureFixture[str]) -> None:
    class Envelope:
        content = b"X-Order-Id: abc\r\nX-Email-Kind: received\r\nSubject: s\r\n\r\nbody"

    answer = asyncio.run(Handler(0.0).handle_DATA(None, None, Envelope()))
    assert answer == "250 OK"
    assert capsys.readouterr().out.startswith("M abc received ")
