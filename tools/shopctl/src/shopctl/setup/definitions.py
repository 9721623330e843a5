"""A RabbitMQ definitions document (``load_definitions``) for the same policy.

For deployments that import definitions at boot instead of running ``shopctl
setup`` against the management API. Only hashes leave this function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shopctl.setup.passwords import RABBITMQ_HASHING_ALGORITHM, rabbitmq_password_hash
from shopctl.setup.policy import FULL_ACCESS, BrokerUser, Permission, password_for

ADMIN_TAGS = ("administrator",)


def definitions(
    users: Sequence[BrokerUser],
    environ: Mapping[str, str],
    *,
    vhost: str,
    admin: tuple[str, str] | None = None,
    salt: bytes | None = None,
) -> dict[str, Any]:
    """``admin`` = (name, password) of the operator account, with full access."""
    accounts: list[dict[str, Any]] = []
    permissions: list[dict[str, Any]] = []
    topic_permissions: list[dict[str, Any]] = []
    if admin is not None:
        name, password = admin
        accounts.append(_user(name, password, ADMIN_TAGS, salt))
        permissions.append(_permission(name, vhost, FULL_ACCESS))
    for user in users:
        accounts.append(_user(user.name, password_for(user, environ), user.tags, salt))
        permissions.append(_permission(user.name, vhost, user.permission))
        topic_permissions.extend(
            {
                "user": user.name,
                "vhost": vhost,
                "exchange": topic.exchange,
                "write": topic.write,
                "read": topic.read,
            }
            for topic in user.topic_permissions
        )
    return {
        "users": accounts,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
    }


def _user(name: str, password: str, tags: Sequence[str], salt: bytes | None) -> dict[str, Any]:
    return {
        "name": name,
        "password_hash": rabbitmq_password_hash(password, salt=salt),
        "hashing_algorithm": RABBITMQ_HASHING_ALGORITHM,
        "tags": list(tags),
        "limits": {},
    }


def _permission(user: str, vhost: str, permission: Permission) -> dict[str, str]:
    return {
        "user": user,
        "vhost": vhost,
        "configure": permission.configure,
        "write": permission.write,
        "read": permission.read,
    }
