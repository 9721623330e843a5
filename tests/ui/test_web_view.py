"""A person's view: open ``shopctl web`` in Chromium, place orders with its form, and
watch each order's events arrive in its timeline, retries and dead letters in their
own colours; replay a dead letter with its button.

One test, one running system: starting the four services is most of the tier's time."""

from __future__ import annotations

import os
import re

import aio_pika
import pytest
from events import Envelope, message_for
from playwright.async_api import Browser, Locator, Page, expect
from shop_contract import SHOP
from shop_contract.testing import order_created

from tests.support.system import System
from tests.ui.conftest import ARTIFACTS, ROOT, WebView

# Four services, ``shopctl web`` and Chromium start within it, on a machine shared with others.
pytestmark = pytest.mark.timeout(360)

HAPPY_PATH = (
    "order.created",
    "inventory.reserved",
    "payment.authorized",
    "email.sent",
    "order.confirmed",
)
SETTLE = 30_000  # ms for an order to reach its final event


async def place_order(page: Page, customer: str, payment_token: str) -> str:
    """Fill in the demo form, press the button, return the accepted order's id."""
    await page.fill("#customer-id", customer)
    await page.select_option("#sku", "KEYBOARD-01")
    await page.select_option("#payment-token", payment_token)
    await page.click("#place-order")
    result = page.locator("#order-result[data-order-id]")
    await expect(result).to_contain_text("accepted", timeout=10_000)
    order_id = await result.get_attribute("data-order-id")
    assert order_id
    await page.evaluate("document.getElementById('order-result').removeAttribute('data-order-id')")
    return order_id


def card(page: Page, order_id: str) -> Locator:
    return page.locator(f'article.order[data-order-id="{order_id}"]')


async def test_the_page_shows_orders_across_services_as_they_happen_and_replays_a_dead_letter(
    browser: Browser, web_view: WebView, system: System, unique: str
) -> None:
    page = await browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        await watch_the_page(page, web_view, system, unique)
    except BaseException:
        # What the page showed when it went wrong, and the view's own log, as artifacts.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "web-view-failed.png"), full_page=True)
        (ARTIFACTS / "web-view-failed.log").write_text(web_view.log_tail(400))
        raise

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = await page.screenshot(path=str(ARTIFACTS / "web-view.png"), full_page=True)
    # The README's picture is refreshed only when asked, so a test run leaves the tree clean.
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
        (ROOT / "docs" / "images" / "web-view.png").write_bytes(shot)


async def watch_the_page(page: Page, web_view: WebView, system: System, unique: str) -> None:
    await page.goto(web_view.url)
    await expect(page.locator("#broker")).to_have_text("broker: connected")
    await expect(page.locator('#sku option[value="KEYBOARD-01"]')).to_have_count(1)
    # the services are there: their queues have consumers
    consumers = page.locator('#queues tr[data-queue="payment.events"] td').nth(2)
    await expect(consumers).to_have_text(re.compile(r"^[1-9][0-9]*$"))

    confirmed = await place_order(page, f"ui-{unique}", "tok_visa")
    order = card(page, confirmed)
    await expect(order.locator('[data-event-type="order.confirmed"]')).to_be_visible(timeout=SETTLE)
    await expect(order.locator("[data-status]")).to_have_text("CONFIRMED")
    for event_type in HAPPY_PATH:
        chip = order.locator(f'[data-kind="event"][data-event-type="{event_type}"]')
        await expect(chip.first).to_be_visible()
        # published by the owning service's broker user, which the broker vouched for
        await expect(chip.first).not_to_have_class("untrusted")
    await expect(order.locator(".chip.svc-payment").first).to_contain_text("payment.authorized")

    # A gateway that times out twice: two retries, in their own colour, then confirmed.
    retried = await place_order(page, f"ui-{unique}-retry", "tok_gatewayTimeout")
    declined = await place_order(page, f"ui-{unique}-declined", "tok_chargeDeclined")
    await expect(card(page, declined).locator('[data-event-type="order.cancelled"]')).to_be_visible(
        timeout=SETTLE
    )
    await expect(
        card(page, retried).locator('[data-kind="event"][data-event-type="order.confirmed"]')
    ).to_be_visible(timeout=SETTLE)
    retries = card(page, retried).locator('[data-kind="retry"]')
    await expect(retries).to_have_count(2)
    await expect(retries.first).to_contain_text("retry 1 in 1s")
    assert await retries.first.evaluate("e => getComputedStyle(e).backgroundColor") == (
        "rgb(255, 237, 213)"  # the retry colour, not the payment lane's
    )

    # An event nobody vouches for (no user_id): each consumer dead-letters it at once.
    forged = await publish_without_user_id(system.amqp_url)
    forged_card = card(page, forged.correlation_id)
    dead = forged_card.locator('[data-kind="dead_letter"]')
    await expect(dead).to_have_count(3, timeout=SETTLE)  # inventory, payment and email
    await expect(forged_card.locator('[data-kind="event"]')).to_have_class(re.compile("untrusted"))
    payment_dlq = page.locator('#queues tr[data-queue="payment.events"] td[data-dead-letters]')
    await expect(payment_dlq).to_have_text("1")
    await forged_card.locator(".chip.kind-dead_letter.svc-payment button.replay").click()
    await expect(page.locator("#letters-result")).to_contain_text(f"replayed {forged.id}")
    await expect(forged_card.locator('[data-kind="replay"]')).to_have_count(1)
    await expect(dead).to_have_count(4)  # still forged: refused again, back in the DLQ
    await expect(payment_dlq).to_have_text("1")
    # one letter in each consumer's DLQ, listed with its replay button
    await expect(page.locator(f'#letters li[data-message-id="{forged.id}"]')).to_have_count(3)


async def publish_without_user_id(amqp_url: str) -> Envelope:
    envelope = Envelope.wrap(order_created())
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(SHOP.exchange, ensure=False)
        await exchange.publish(message_for(envelope), envelope.type, mandatory=True)
    return envelope
