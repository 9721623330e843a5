"""The sandbox gateway's rules, and the deadline on every gateway call."""

import asyncio
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from payment_service.adapters.gateway import (
    Authorized,
    Declined,
    GatewayUnavailable,
    TimeLimitedGateway,
)
from payment_service.adapters.sandbox_gateway import SandboxGateway

LIMIT = Decimal("100.00")


async def authorize(
    gateway: SandboxGateway | TimeLimitedGateway,
    token: str,
    amount: str = "10.00",
    order_id: UUID | None = None,
) -> Authorized | Declined:
    return await gateway.authorize(
        order_id=order_id or uuid4(), amount=Decimal(amount), currency="EUR", token=token
    )


@pytest.fixture
def sandbox() -> SandboxGateway:
    return SandboxGateway(amount_limit=LIMIT)


async def test_any_other_token_authorizes(sandbox: SandboxGateway) -> None:
    answer = await authorize(sandbox, "tok_visa")

    assert isinstance(answer, Authorized)
    assert answer.authorization_id.startswith("auth_")


@pytest.mark.parametrize(
    ("token", "reason"),
    [("tok_chargeDeclined", "card declined"), ("tok_insufficientFunds", "insufficient funds")],
)
async def test_declining_tokens_decline_with_their_reason(
    sandbox: SandboxGateway, token: str, reason: str
) -> None:
    assert await authorize(sandbox, token, amount="1.00") == Declined(reason)


async def test_the_amount_limit_is_inclusive(sandbox: SandboxGateway) -> None:
    assert isinstance(await authorize(sandbox, "tok_visa", amount="100.00"), Authorized)
    assert await authorize(sandbox, "tok_visa", amount="100.01") == Declined("amount exceeds limit")


async def test_the_default_limit_is_ten_thousand() -> None:
    gateway = SandboxGateway()

    assert isinstance(await authorize(gateway, "tok_visa", amount="10000.00"), Authorized)
    assert isinstance(await authorize(gateway, "tok_visa", amount="10000.01"), Declined)


async def test_gateway_timeout_token_fails_twice_per_order_then_authorizes(
    sandbox: SandboxGateway,
) -> None:
    order, other = uuid4(), uuid4()

    for attempt in (1, 2):
        with pytest.raises(GatewayUnavailable):
            await authorize(sandbox, "tok_gatewayTimeout", order_id=order)
        assert sandbox.attempts(order) == attempt
    # Another order's count is its own.
    with pytest.raises(GatewayUnavailable):
        await authorize(sandbox, "tok_gatewayTimeout", order_id=other)

    assert isinstance(await authorize(sandbox, "tok_gatewayTimeout", order_id=order), Authorized)


async def test_authorizing_an_order_again_returns_the_same_authorization(
    sandbox: SandboxGateway,
) -> None:
    order = uuid4()

    first = await authorize(sandbox, "tok_visa", order_id=order)
    second = await authorize(sandbox, "tok_visa", order_id=order)

    assert isinstance(first, Authorized)
    assert first == second
    assert first != await authorize(sandbox, "tok_visa")


async def test_void_is_recorded_and_repeatable(sandbox: SandboxGateway) -> None:
    answer = await authorize(sandbox, "tok_visa")
    assert isinstance(answer, Authorized)

    await sandbox.void(answer.authorization_id)
    await sandbox.void(answer.authorization_id)

    assert sandbox.is_voided(answer.authorization_id)


class HangingGateway:
    """Never answers, like a gateway behind a black-holed connection."""

    async def authorize(
        self, *, order_id: UUID, amount: Decimal, currency: str, token: str
    ) -> Authorized | Declined:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def void(self, authorization_id: str) -> None:
        await asyncio.Event().wait()

    async def release(self, *, order_id: UUID) -> str | None:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_gateway_that_does_not_answer_in_time_is_unavailable() -> None:
    gateway = TimeLimitedGateway(HangingGateway(), timeout=0.05)

    with pytest.raises(GatewayUnavailable, match=r"within 0\.05s"):
        await authorize(gateway, "tok_visa")
    with pytest.raises(GatewayUnavailable):
        await gateway.void("auth_1")


async def test_a_timely_answer_passes_through_the_deadline(sandbox: SandboxGateway) -> None:
    gateway = TimeLimitedGateway(sandbox, timeout=1)

    assert await authorize(gateway, "tok_chargeDeclined") == Declined("card declined")
    with pytest.raises(GatewayUnavailable, match="simulated"):
        await authorize(gateway, "tok_gatewayTimeout")
