"""The least-privilege plan as a table, so an operator can read what will be granted."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from shopctl.services import colour_of
from shopctl.setup.policy import BrokerUser, ServiceDatabase


def broker_table(users: Sequence[BrokerUser], vhost: str) -> Table:
    table = Table(title=f"broker users (vhost {vhost})", title_justify="left")
    for column in ("user", "configure", "write", "read", "topic write", "topic read"):
        table.add_column(column, overflow="fold")
    for user in users:
        topic = user.topic_permissions[0] if user.topic_permissions else None
        table.add_row(
            f"[{colour_of(user.service)}]{escape(user.name)}[/]",
            escape(user.permission.configure),
            escape(user.permission.write),
            escape(user.permission.read),
            escape(f"{topic.exchange}: {topic.write}") if topic else "",
            escape(f"{topic.exchange}: {topic.read}") if topic else "",
        )
    return table


def database_table(databases: Sequence[ServiceDatabase]) -> Table:
    table = Table(title="databases", title_justify="left")
    for column in ("role", "database", "password from"):
        table.add_column(column)
    for database in databases:
        table.add_row(
            f"[{colour_of(database.service)}]{escape(database.role)}[/]",
            escape(database.database),
            f"${database.password_env}",
        )
    return table
