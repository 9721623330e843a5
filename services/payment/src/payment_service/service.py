"""The payment service, as the service kit runs it."""

from __future__ import annotations

from pathlib import Path

from service_kit import Runtime, ServiceDefinition

from payment_service.adapters.gateway import TimeLimitedGateway
from payment_service.adapters.sandbox_gateway import SandboxGateway
from payment_service.api.routes import router
from payment_service.handlers import GATEWAY_RESOURCE, build_handlers
from payment_service.settings import Settings


async def open_gateway(runtime: Runtime) -> None:
    settings = runtime.settings
    if not isinstance(settings, Settings):
        raise TypeError(
            f"the payment service needs {Settings.__qualname__}, got {type(settings).__qualname__}"
        )
    runtime.resources[GATEWAY_RESOURCE] = TimeLimitedGateway(
        SandboxGateway(amount_limit=settings.payment_amount_limit),
        timeout=settings.payment_gateway_timeout,
    )


async def close_gateway(runtime: Runtime) -> None:
    # The sandbox holds no connection; a real gateway client would be closed here.
    runtime.resources.pop(GATEWAY_RESOURCE, None)


SERVICE = ServiceDefinition(
    name="payment",
    settings_type=Settings,
    migrations=Path(__file__).parent / "migrations",
    routers=[router],
    handlers=build_handlers,
    on_start=open_gateway,
    on_stop=close_gateway,
    description=(
        "Authorizes each order's total with a (sandbox) payment gateway on "
        "order.created and voids it on order.cancelled."
    ),
)
