"""The commands end to end through the command line, against the real broker.

These tests are synchronous: the CLI runs its own event loop, as it does for people.
"""

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from shopctl.cli import app
from typer.testing import CliRunner, Result

from tests.integration.shopctl.support import (
    cancelled,
    dead_letter,
    declare_service_queues,
    message_count,
)
from tests.support.accounts import ShopBroker

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("restore_logging")]
runner = CliRunner()


@pytest.fixture
def dead_letters(vhost_url: str, shop_broker: ShopBroker) -> tuple[str, list[str]]:
    """The operator's URL (as ``shopctl setup`` makes it) and three payment dead letters."""

    async def fill() -> list[str]:
        await declare_service_queues(vhost_url, "payment", "order")
        return [await dead_letter(vhost_url, "payment", cancelled()) for _ in range(3)]

    os.environ["BROKER_USER_PREFIX"] = shop_broker.prefix  # whom a replay speaks for
    return shop_broker.url("operator"), asyncio.run(fill())


@pytest.fixture(autouse=True)
def _no_prefix_left_behind() -> Iterator[None]:
    yield
    os.environ.pop("BROKER_USER_PREFIX", None)


def invoke(url: str, *args: str, stdin: str | None = None) -> Result:
    env = {"SHOPCTL_AMQP_URL": url, "COLUMNS": "200"}
    env["BROKER_USER_PREFIX"] = os.environ.get("BROKER_USER_PREFIX", "")
    return runner.invoke(app, list(args), env=env, input=stdin)


def shopctl(url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = invoke(url, *args, stdin=stdin)
    return result.exit_code, result.output


def test_dlq_list_show_replay_and_purge(dead_letters: tuple[str, list[str]]) -> None:
    url, ids = dead_letters

    code, output = shopctl(url, "dlq", "list")
    assert code == 0, output
    row = next(line for line in output.splitlines() if "payment.events.dlq" in line)
    assert "RuntimeError" in row
    assert " 3 " in row
    assert "missing" in next(line for line in output.splitlines() if "email.events.dlq" in line)

    code, output = shopctl(url, "dlq", "show", "payment", "--index", "1")
    assert code == 0, output
    assert ids[1] in output
    assert '"type": "order.cancelled"' in output

    code, output = shopctl(url, "dlq", "show", "payment", "--index", "7")
    assert code == 1
    assert "holds 3 message(s)" in output

    result = invoke(url, "dlq", "replay", "payment.events.dlq", "--message-id", ids[0])
    assert (result.exit_code, result.stdout.strip()) == (
        0,
        "replayed 1 message(s) from payment.events.dlq to payment.events",
    )
    assert "dlq.replayed" in result.stderr  # and logged, with the count
    assert "count=1" in result.stderr
    code, output = shopctl(url, "dlq", "replay", "payment", "--message-id", ids[0])
    assert code == 1
    assert f"no message {ids[0]}" in output

    code, output = shopctl(url, "dlq", "purge", "payment", stdin="n\n")
    assert code == 1
    assert asyncio.run(message_count(url, "payment.events.dlq")) == 2

    result = invoke(url, "dlq", "purge", "payment", "--yes")
    assert (result.exit_code, result.stdout.strip()) == (
        0,
        "purged 2 message(s) from payment.events.dlq",
    )
    assert asyncio.run(message_count(url, "payment.events.dlq")) == 0
    assert asyncio.run(message_count(url, "payment.events")) == 1


def test_dlq_commands_on_a_missing_queue_fail_clearly(vhost_url: str) -> None:
    code, output = shopctl(vhost_url, "dlq", "show", "payment")
    assert code == 1
    assert "queue 'payment.events.dlq' does not exist" in output


def test_tail_with_count_and_timeout_stops_by_itself(vhost_url: str) -> None:
    code, output = shopctl(vhost_url, "tail", "--timeout", "0.2")
    assert code == 0, output
    assert "0 event(s)" in output


class _Orders(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"detail": "order not found"}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def order_service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Orders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_trace_of_an_unknown_order_says_so_and_exits_1(order_service: str) -> None:
    result = runner.invoke(
        app,
        ["trace", "no-such-order", "--order-url", order_service, "--no-dead-letters"],
        env={"SHOPCTL_TOKEN": "an-operators-token"},
    )
    assert result.exit_code == 1
    assert "order no-such-order is unknown to the order service" in result.output


def test_trace_with_the_order_service_down_says_so(unused_tcp_port: int) -> None:
    result = runner.invoke(
        app,
        ["trace", "o1", "--order-url", f"http://127.0.0.1:{unused_tcp_port}", "--no-dead-letters"],
        env={"SHOPCTL_TOKEN": "an-operators-token"},
    )
    assert result.exit_code == 1
    assert "order service" in result.output
    assert "unreachable" in result.output
