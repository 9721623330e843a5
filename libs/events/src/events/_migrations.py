"""The outbox and inbox tables, shipped as an Alembic branch of their own.

A service's migrations run with two version locations, its own and this one
(``service_kit`` does that), so every service gets the messaging tables, and
their later changes, without a line of its own.
"""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
"""Alembic version location of the ``events`` branch."""
