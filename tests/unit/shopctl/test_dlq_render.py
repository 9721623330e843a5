"""What dlq list and dlq show print."""

import json
from dataclasses import replace

from rich.console import Console
from shopctl.dlq.letters import QueueSummary, group
from shopctl.dlq.render import letter_view, summary_table

from tests.unit.shopctl.samples import broker_dead_letter, consumer_dead_letter


def text_of(renderable: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_summary_shows_depth_and_groups_per_queue() -> None:
    letters = [consumer_dead_letter(), consumer_dead_letter(), broker_dead_letter()]
    text = text_of(
        summary_table(
            [
                QueueSummary("order.events.dlq", 0),
                QueueSummary("payment.events.dlq", 5, tuple(group(letters)), read=3),
                QueueSummary("email.events.dlq", None),
            ]
        )
    )
    assert "order.events.dlq" in text
    assert "missing" in text
    lines = [line for line in text.splitlines() if "MalformedMessage" in line]
    assert len(lines) == 1
    assert "payment.events.dlq" in lines[0]
    assert " 5 " in lines[0]
    assert " 2 " in lines[0]
    assert "permanent-error" in lines[0]
    assert "delivery_limit" in text
    assert "grouped the first 3" in text


def test_show_prints_facts_headers_and_pretty_json() -> None:
    letter = consumer_dead_letter(message="bad [markup] body")
    text = text_of(letter_view(letter))
    assert letter.message_id is not None
    assert letter.message_id in text
    assert "MalformedMessage: bad [markup] body" in text
    assert "x-original-queue" in text
    assert '"type": "order.created"' in text  # indented JSON, one key per line
    assert '  "version": 1,' in text


def test_show_never_prints_the_sealed_card_token() -> None:
    letter = consumer_dead_letter()
    body = json.loads(letter.body)
    body["data"]["sealed_payment_token"] = "eyJhbGciOiJFQ0RILUVTIn0.secret-ciphertext"
    text = text_of(letter_view(replace(letter, body=json.dumps(body).encode())))
    assert "secret-ciphertext" not in text
    assert '"sealed_payment_token": "<sealed for the payment service>"' in text
