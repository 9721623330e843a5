"""One order can be followed across services: by its id in the logs, by one trace."""

import json

import pytest

from tests.support.shop import Shop, order_body
from tests.support.system import SERVICES, System
from tests.support.tap import event_tap

pytestmark = pytest.mark.timeout(120)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.local_processes
async def test_logs_and_trace_context_follow_one_order_across_services(system: System) -> None:
    shop = Shop(system)
    async with event_tap(system.amqp_url) as tap:
        response = await system.http.post(
            f"{system.url('order')}/orders",
            json=order_body(("MOUSE-01", 1)),
            headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        )
        assert response.status_code == 202
        order_id = response.json()["id"]
        await shop.wait_final(order_id)
        await shop.wait_emails(order_id, {"received", "confirmed"})
        await tap.wait_for(order_id, "email.sent")

        events = tap.of_order(order_id)
        # Every event of the order, whichever service emitted it, is in the trace.
        assert {m.type for m in events} >= {
            "order.created",
            "inventory.reserved",
            "payment.authorized",
            "order.confirmed",
            "email.sent",
        }
        for message in events:
            traceparent = str((message.headers or {}).get("traceparent", ""))
            assert traceparent.split("-")[1:2] == [TRACE_ID], (message.type, traceparent)
            assert message.correlation_id == order_id
            assert message.content_type == "application/json"
            assert message.delivery_mode == 2  # persistent
            assert (message.headers or {})["x-schema-version"] == 1
        created = next(m for m in events if m.type == "order.created")
        reserved = next(m for m in events if m.type == "inventory.reserved")
        assert (reserved.headers or {})["x-causation-id"] == created.message_id

    for name in SERVICES:
        lines = [
            json.loads(line)
            for line in system.services[name].log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        about_order = [line for line in lines if line.get("correlation_id") == order_id]
        assert about_order, f"{name} logged nothing about order {order_id}"
        for line in about_order:
            if "event_id" in line:
                assert line["event_type"]
                assert line["service"] == name
