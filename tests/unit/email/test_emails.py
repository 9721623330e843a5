"""Which email each order event calls for, and the message it becomes."""

import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from email_service.domain.emails import (
    message_id_for,
    order_cancelled_email,
    order_confirmed_email,
    order_received_email,
)
from shop_contract.testing import order_cancelled, order_confirmed, order_created

SCRIPT = "<script>alert('x')</script>"

SENDER = "Shop <orders@shop.example>"
WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.iter_parts()}


def test_each_event_calls_for_its_kind_to_the_customer() -> None:
    order_id = uuid.uuid4()
    assert order_received_email(order_created(order_id)).kind == "received"
    assert order_confirmed_email(order_confirmed(order_id)).kind == "confirmed"
    cancelled = order_cancelled_email(order_cancelled(order_id, email="x@example.org"))
    assert cancelled.kind == "cancelled"
    assert cancelled.to == "x@example.org"
    assert cancelled.order_id == order_id


def test_message_id_depends_on_order_and_kind_only() -> None:
    order_id = uuid.UUID("1234abcd-0000-4000-8000-000000000000")
    first = order_received_email(order_created(order_id, customer_id="a"))
    second = order_received_email(order_created(order_id, customer_id="b"))
    assert first.message_id == second.message_id == f"<{order_id}.received@shop.example>"
    assert message_id_for(order_id, "confirmed") != message_id_for(order_id, "received")


def test_message_is_multipart_alternative_with_text_and_html() -> None:
    email = order_received_email(order_created())
    message = email.to_message(sender=SENDER, date=WHEN)
    assert message.get_content_type() == "multipart/alternative"
    content = parts(message)
    assert set(content) == {"text/plain", "text/html"}
    assert "SKU-1" in content["text/plain"]
    assert "<table>" in content["text/html"]


def test_message_headers_identify_order_kind_and_duplicate() -> None:
    event = order_cancelled(reason="payment declined")
    message = order_cancelled_email(event).to_message(sender=SENDER, date=WHEN)
    assert message["From"] == SENDER
    assert message["To"] == "buyer@example.com"
    assert message["Subject"] == f"Your order {event.order_id.hex[:8]}… was cancelled"
    assert message["Message-ID"] == f"<{event.order_id}.cancelled@shop.example>"
    assert message["X-Order-Id"] == str(event.order_id)
    assert message["X-Email-Kind"] == "cancelled"
    assert message["Date"] == "Sat, 01 Mar 2025 12:00:00 +0000"


def test_message_survives_the_wire_with_escaped_html() -> None:
    event = order_cancelled(customer_id=SCRIPT, reason=f"because {SCRIPT}")
    wire = order_cancelled_email(event).to_message(sender=SENDER, date=WHEN).as_bytes()
    parsed = message_from_bytes(wire, policy=policy.default)
    content = parts(parsed)
    assert "<script>" not in content["text/html"]
    assert "&lt;script&gt;" in content["text/html"]
    assert f"Reason: because {SCRIPT}" in content["text/plain"]
    assert parsed["Subject"].endswith("was cancelled")
