"""Benchmarks of the shop on the real stack: ``uv run python -m bench --help``.

Figures, not assertions: every scenario measures, prints a table, writes
``bench/results/<scenario>.json`` and draws PNG charts next to it.
"""
