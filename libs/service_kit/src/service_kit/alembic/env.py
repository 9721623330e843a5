"""The one Alembic environment every service's migrations run in (see migrations.py)."""

from alembic import context
from service_kit.migrations import run_env

run_env(context.config.attributes.get("target_metadata"))
