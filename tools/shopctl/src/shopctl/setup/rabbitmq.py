"""Apply the broker policy through the RabbitMQ management HTTP API (idempotent PUTs).

The management API works the same against a local broker, the compose service and
the Kubernetes one, and needs no ``rabbitmqctl`` in the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from shopctl.config import DEFAULT_HTTP_TIMEOUT
from shopctl.errors import ShopctlError
from shopctl.setup.management import (
    DEFAULT_AMQP_PORT,
    ApiState,
    Endpoints,
    LiveProbes,
    LocalPlugins,
    ensure_management_api,
)
from shopctl.setup.passwords import RABBITMQ_HASHING_ALGORITHM, rabbitmq_password_hash
from shopctl.setup.policy import FULL_ACCESS, BrokerUser, Permission, password_for

log = structlog.get_logger("shopctl.setup")

DEFAULT_WAIT = 60.0


class ManagementApi:
    """A thin client for ``/api``; credentials come from the URL's user info."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_HTTP_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parsed = httpx.URL(url)
        self.user = parsed.username
        self.host = parsed.host
        self.address = f"{parsed.host}:{parsed.port or 15672}"
        auth = (parsed.username, parsed.password) if parsed.username else None
        base = str(parsed.copy_with(username=None, password=None)).rstrip("/")
        base = base.removesuffix("/api")
        self._client = httpx.AsyncClient(
            base_url=f"{base}/api", auth=auth, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> ManagementApi:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def state(self) -> ApiState:
        """Up, refusing connections (plugin off or broker down), or not ready yet."""
        try:
            await self.get("/overview")
        except httpx.ConnectError:
            return ApiState.CLOSED
        except (httpx.TransportError, _Unavailable):
            return ApiState.STARTING
        return ApiState.UP

    async def get(self, path: str) -> Any:
        response = await self._client.get(path)
        _check(response)
        return response.json()

    async def exists(self, path: str) -> bool:
        response = await self._client.get(path)
        if response.status_code == httpx.codes.NOT_FOUND:
            return False
        _check(response)
        return True

    async def put(self, path: str, body: Mapping[str, Any] | None = None) -> None:
        _check(await self._client.put(path, json=body or {}))

    async def delete(self, path: str) -> None:
        response = await self._client.delete(path)
        if response.status_code != httpx.codes.NOT_FOUND:
            _check(response)


def admin_account(url: str) -> tuple[str, str] | None:
    """The (user, password) in the API URL: the operator account, given full access."""
    parsed = httpx.URL(url)
    return (parsed.username, parsed.password) if parsed.username else None


def segment(name: str) -> str:
    """A vhost or user name as one URL path segment (``/`` → ``%2F``)."""
    return quote(name, safe="")


async def apply_broker(
    api: ManagementApi,
    users: Sequence[BrokerUser],
    environ: Mapping[str, str],
    *,
    vhost: str,
    wait: float = DEFAULT_WAIT,
    amqp_port: int = DEFAULT_AMQP_PORT,
) -> list[str]:
    """Create or update users, vhost permissions and topic permissions; returns what it did."""
    done = await management_ready(api, wait=wait, amqp_port=amqp_port)
    v = segment(vhost)
    if not await api.exists(f"/vhosts/{v}"):
        await api.put(f"/vhosts/{v}")
        done.append(f"created vhost {vhost}")
    if api.user:
        await api.put(f"/permissions/{v}/{segment(api.user)}", _permission(FULL_ACCESS))
        done.append(f"{api.user}: full access to vhost {vhost}")
    for user in users:
        await api.put(
            f"/users/{segment(user.name)}",
            {
                "password_hash": rabbitmq_password_hash(password_for(user, environ)),
                "hashing_algorithm": RABBITMQ_HASHING_ALGORITHM,
                "tags": ",".join(user.tags),
            },
        )
        await api.put(f"/permissions/{v}/{segment(user.name)}", _permission(user.permission))
        for topic in user.topic_permissions:
            await api.put(
                f"/topic-permissions/{v}/{segment(user.name)}",
                {"exchange": topic.exchange, "write": topic.write, "read": topic.read},
            )
        done.append(f"user {user.name}: password set, permissions on {vhost} applied")
        log.info("setup.broker_user", user=user.name, vhost=vhost)
    return done


async def management_ready(
    api: ManagementApi, *, wait: float, amqp_port: int = DEFAULT_AMQP_PORT
) -> list[str]:
    """Wait for the API; on this host, turn its plugin on if it is off (see ``management``).
    ``amqp_port`` is the broker's AMQP port on the API's host: it answering while the
    API port refuses is how a plugin that is off is told from a broker that is down."""
    return await ensure_management_api(
        LiveProbes(api.state, amqp_host=api.host, amqp_port=amqp_port),
        LocalPlugins(api.host),
        where=Endpoints(api=api.address, amqp=f"{api.host}:{amqp_port}"),
        within=wait,
    )


class _Unavailable(ShopctlError):
    """The API answered, but is not ready yet (503 while the node boots)."""


def _check(response: httpx.Response) -> None:
    if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
        raise _Unavailable(f"{response.request.url.path}: 503")
    if response.is_error:
        raise ShopctlError(
            f"RabbitMQ API {response.request.method} {response.request.url.path}"
            f" answered {response.status_code}: {response.text[:300]}"
        )


def _permission(permission: Permission) -> dict[str, str]:
    return {
        "configure": permission.configure,
        "write": permission.write,
        "read": permission.read,
    }
