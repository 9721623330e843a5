"""dlq list/show/replay/purge against a real payment.events.dlq in a fresh vhost."""

from datetime import UTC, datetime, timedelta

import pytest
from shopctl.amqp import connected
from shopctl.dlq import queues
from shopctl.errors import NotADeadLetterQueue, QueueNotFound, ShopctlError

from tests.integration.shopctl.support import (
    cancelled,
    dead_letter,
    declare_service_queues,
    drain,
    message_count,
)
from tests.support.accounts import ShopBroker

pytestmark = pytest.mark.timeout(30)
WEEK = timedelta(days=7)
DLQ = "payment.events.dlq"


@pytest.fixture
async def dlq_url(vhost_url: str) -> str:
    await declare_service_queues(vhost_url, "payment")
    return vhost_url


@pytest.fixture
def operator(shop_broker: ShopBroker) -> str:
    """The operator account: it may publish as the payment service (impersonator)."""
    return shop_broker.url("operator")


def payment_user(shop_broker: ShopBroker) -> str:
    return shop_broker.user("payment")


async def test_list_groups_dead_letters_and_keeps_them(dlq_url: str) -> None:
    await dead_letter(dlq_url, "payment", cancelled())
    await dead_letter(dlq_url, "payment", cancelled())
    await dead_letter(
        dlq_url,
        "payment",
        cancelled(),
        {"x-dead-letter-reason": "permanent-error", "x-exception": "MalformedMessage"},
    )
    async with connected(dlq_url, purpose="test") as connection:
        summary = await queues.summarize(connection, DLQ)
        missing = await queues.summarize(connection, "order.events.dlq")

    assert summary.depth == 3
    assert summary.read == 3
    assert [(g.exception, g.reason, g.count) for g in summary.groups] == [
        ("RuntimeError", "retries-exhausted", 2),
        ("MalformedMessage", "permanent-error", 1),
    ]
    assert missing.depth is None
    assert await message_count(dlq_url, DLQ) == 3


async def test_peeking_keeps_every_message_in_its_order(dlq_url: str) -> None:
    ids = [await dead_letter(dlq_url, "payment", cancelled()) for _ in range(4)]
    async with connected(dlq_url, purpose="test") as connection:
        everything = await queues.peek(connection, DLQ)
        again = await queues.peek(connection, DLQ)

    assert [x.message_id for x in everything] == ids
    assert [x.message_id for x in again] == ids
    assert [x.position for x in again] == [0, 1, 2, 3]
    assert again[1].headers["x-exception"] == "RuntimeError"
    body = again[1].body_json()
    assert isinstance(body, dict)
    assert body["id"] == ids[1]
    assert [m.message_id for m in await drain(dlq_url, DLQ)] == ids


async def test_replay_one_message_moves_it_back_with_a_fresh_retry_budget(
    dlq_url: str, operator: str, shop_broker: ShopBroker
) -> None:
    ids = [await dead_letter(dlq_url, "payment", cancelled()) for _ in range(3)]
    async with connected(operator, purpose="test") as connection:
        as_payment = payment_user(shop_broker)
        result = await queues.replay(
            connection, DLQ, as_user=as_payment, inbox_retention=WEEK, message_id=ids[1]
        )
        left = await queues.peek(connection, DLQ)

    assert result.replayed == (ids[1],)
    assert result.target == "payment.events"
    assert [x.message_id for x in left] == [ids[0], ids[2]]  # the others, in order
    (replayed,) = await drain(dlq_url, "payment.events")
    assert replayed.message_id == ids[1]
    assert replayed.type == "order.cancelled"
    assert replayed.content_type == "application/json"
    assert replayed.correlation_id is not None
    assert replayed.user_id == payment_user(shop_broker), "the way back believes only payment"
    headers = replayed.headers
    assert "x-retry-count" not in headers
    assert headers["x-replay-count"] == 1
    assert "x-replayed-at" in headers
    assert headers["x-schema-version"] == 1
    assert headers["x-exception"] == "RuntimeError"


async def test_replay_all_moves_everything_present(
    dlq_url: str, operator: str, shop_broker: ShopBroker
) -> None:
    ids = [await dead_letter(dlq_url, "payment", cancelled()) for _ in range(3)]
    async with connected(operator, purpose="test") as connection:
        result = await queues.replay(
            connection, DLQ, as_user=payment_user(shop_broker), inbox_retention=WEEK
        )
    assert result.count == 3
    assert await message_count(dlq_url, DLQ) == 0
    assert [m.message_id for m in await drain(dlq_url, "payment.events")] == ids


async def test_a_message_that_fails_again_during_the_replay_is_not_replayed_twice(
    dlq_url: str, operator: str, shop_broker: ShopBroker
) -> None:
    await dead_letter(dlq_url, "payment", cancelled())
    async with connected(operator, purpose="test") as connection:
        first = await queues.replay(
            connection, DLQ, as_user=payment_user(shop_broker), inbox_retention=WEEK
        )
        # the service dead-letters it again at once, keeping the replay stamp
        (back,) = await drain(dlq_url, "payment.events")
        await dead_letter(
            dlq_url, "payment", cancelled(), {"x-replayed-at": back.headers["x-replayed-at"]}
        )
        assert await message_count(dlq_url, DLQ) == 1
    assert first.count == 1


async def test_replay_of_an_unknown_message_id_moves_nothing(
    dlq_url: str, operator: str, shop_broker: ShopBroker
) -> None:
    await dead_letter(dlq_url, "payment", cancelled())
    async with connected(operator, purpose="test") as connection:
        as_payment = payment_user(shop_broker)
        result = await queues.replay(
            connection, DLQ, as_user=as_payment, inbox_retention=WEEK, message_id="no-such-id"
        )
    assert result.count == 0
    assert await message_count(dlq_url, DLQ) == 1


async def test_a_user_who_may_not_impersonate_cannot_replay_and_loses_nothing(
    dlq_url: str, shop_broker: ShopBroker
) -> None:
    await dead_letter(dlq_url, "payment", cancelled())
    async with connected(dlq_url, purpose="test") as connection:  # guest: no impersonator tag
        with pytest.raises(ShopctlError, match="not confirmed"):
            await queues.replay(
                connection, DLQ, as_user=payment_user(shop_broker), inbox_retention=WEEK
            )
    assert await message_count(dlq_url, DLQ) == 1


async def test_purge_empties_the_dlq_and_counts(dlq_url: str) -> None:
    for _ in range(2):
        await dead_letter(dlq_url, "payment", cancelled())
    async with connected(dlq_url, purpose="test") as connection:
        assert await queues.purge(connection, DLQ) == 2
        assert await queues.purge(connection, DLQ) == 0
        with pytest.raises(NotADeadLetterQueue):
            await queues.purge(connection, "payment.events")
        with pytest.raises(QueueNotFound):
            await queues.purge(connection, "nobody.events.dlq")
    assert await message_count(dlq_url, DLQ) == 0


async def test_a_letter_older_than_the_inbox_retention_is_not_replayed_unless_forced(
    dlq_url: str, operator: str, shop_broker: ShopBroker
) -> None:
    """Its consumer no longer remembers whether it handled the event: a replay could
    act twice. Such a letter stays in the DLQ, with the reason, until forced."""
    old = await dead_letter(dlq_url, "payment", cancelled())
    recent = await dead_letter(dlq_url, "payment", cancelled())
    as_payment = payment_user(shop_broker)
    eight_days_on = datetime.now(UTC) + timedelta(days=8)
    async with connected(operator, purpose="test") as connection:
        # The first letter is eight days old by then; replay the second "now".
        result = await queues.replay(
            connection, DLQ, as_user=as_payment, inbox_retention=WEEK, now=eight_days_on
        )
        assert (result.replayed, result.too_old) == ((), (old, recent))
        assert await message_count(dlq_url, DLQ) == 2
        forced = await queues.replay(
            connection, DLQ, as_user=as_payment, inbox_retention=None, now=eight_days_on
        )
    assert forced.replayed == (old, recent)
    assert await message_count(dlq_url, DLQ) == 0
