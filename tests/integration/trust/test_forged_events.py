"""The forgeries found in review, tried against the real services on a real broker.

Each service runs as its own least-privilege broker user; the forger is another
service's user (whose topic permission lets it publish only its own keys) or the
vhost's administrator. Every forgery must end in the DLQ, marked forged, and
change nothing.
"""

import aio_pika
import httpx
import pytest
from events import DeadLetterReason, Envelope, Headers, message_for
from shop_contract import SHOP
from shop_contract.testing import order_cancelled, order_created, payment_authorized

from tests.integration.email.support import SmtpSink
from tests.support.accounts import ShopBroker, publish_as_owner
from tests.support.apps import wait_until
from tests.support.tokens import sealer

pytestmark = pytest.mark.timeout(90)


async def publish_as(url: str, key: str, message: aio_pika.Message, *, exchange: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False) if exchange else None
        await (target or channel.default_exchange).publish(message, key)


async def dead_letters(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(queue, passive=True)
        taken = []
        while (message := await dlq.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
        return taken


async def forged_in(url: str, queue: str) -> bool:
    return any(
        m.headers.get(Headers.DEAD_LETTER_REASON) == DeadLetterReason.FORGED
        for m in await dead_letters(url, queue)
    )


async def test_inventory_cannot_pass_off_a_payment_authorization(
    apps: dict[str, httpx.AsyncClient], shop_broker: ShopBroker
) -> None:
    """As shop_inventory, on its own key inventory.reserved, a body saying
    payment.authorized: before, it confirmed an order whose payment was declined."""
    order = apps["order"]
    placed = await order.post(
        "/orders",
        json={
            "customer_id": "c-1",
            "email": "buyer@example.com",
            "items": [{"sku": "MOUSE-01", "quantity": 1}],
            "payment_token": "tok_chargeDeclined",
        },
    )
    order_id = placed.json()["id"]
    await wait_until(lambda: _status_is(order, order_id, "CANCELLED"), timeout=20)

    forged = Envelope.wrap(payment_authorized(order_id))  # type: ignore[arg-type]
    message = message_for(forged, user_id=shop_broker.user("inventory"))
    message.type = "inventory.reserved"
    await publish_as(
        shop_broker.url("inventory"), "inventory.reserved", message, exchange=SHOP.exchange
    )
    await wait_until(lambda: forged_in(shop_broker.vhost_url, "order.events.dlq"), timeout=15)
    body = (await order.get(f"/orders/{order_id}")).json()
    assert body["status"] == "CANCELLED"
    assert [h["status"] for h in body["history"]] == ["PENDING", "CANCELLED"]


async def test_the_administrator_cannot_make_the_email_service_mail_anyone(
    apps: dict[str, httpx.AsyncClient], shop_broker: ShopBroker, sink: SmtpSink
) -> None:
    """As the vhost's administrator (guest), a forged order.cancelled: before, the email
    service mailed the chosen text to the chosen address."""
    phishing = order_cancelled(
        reason="Your card was charged twice: click here", email="victim@example.org"
    )
    message = message_for(Envelope.wrap(phishing), user_id="guest")
    await publish_as(shop_broker.vhost_url, "order.cancelled", message, exchange=SHOP.exchange)
    await wait_until(lambda: forged_in(shop_broker.vhost_url, "email.events.dlq"), timeout=15)
    assert sink.collector.about(phishing.order_id) == []
    listed = await apps["email"].get("/emails", params={"order_id": str(phishing.order_id)})
    assert listed.json() == []


async def test_a_cancellation_sent_straight_to_payments_queue_voids_nothing(
    apps: dict[str, httpx.AsyncClient], shop_broker: ShopBroker
) -> None:
    """Straight to payment.events (the default exchange), as the administrator: before,
    it voided a confirmed order's payment."""
    created = order_created(sealer=sealer(), total=None)
    await publish_as_owner(shop_broker, created)
    payments = apps["payment"]
    await wait_until(lambda: _payment_is(payments, created.order_id, "AUTHORIZED"), timeout=20)

    forged = message_for(Envelope.wrap(order_cancelled(created.order_id)), user_id="guest")
    await publish_as(shop_broker.vhost_url, "payment.events", forged, exchange="")
    await wait_until(lambda: forged_in(shop_broker.vhost_url, "payment.events.dlq"), timeout=15)
    assert (await payments.get(f"/payments/{created.order_id}")).json()["status"] == "AUTHORIZED"


async def _status_is(client: httpx.AsyncClient, order_id: str, status: str) -> bool:
    return bool((await client.get(f"/orders/{order_id}")).json()["status"] == status)


async def _payment_is(client: httpx.AsyncClient, order_id: object, status: str) -> bool:
    response = await client.get(f"/payments/{order_id}")
    return response.status_code == 200 and response.json()["status"] == status
