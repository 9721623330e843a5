"""The UI tier: the four services as processes (as in e2e), ``shopctl web`` as a
process, and a real headless Chromium from Debian's packages driving the page."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright
from shopctl.keys import KeyFiles

from tests.conftest import NewDatabase
from tests.support.accounts import ShopBroker
from tests.support.apps import wait_until
from tests.support.system import BIN, SERVICES, System, free_port, running_system
from tests.support.tokens import keys

CHROMIUM = Path(os.environ.get("UI_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "ui"


@pytest.fixture
async def system(
    shop_broker: ShopBroker, new_database: NewDatabase, tmp_path: Path
) -> AsyncIterator[System]:
    databases = {name: await new_database(name) for name in SERVICES}
    async with running_system(broker=shop_broker, databases=databases, workdir=tmp_path) as running:
        yield running


@dataclass
class WebView:
    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
async def web_view(
    system: System, shop_broker: ShopBroker, tmp_path: Path
) -> AsyncIterator[WebView]:
    """``shopctl web`` as an operator starts it, signing tokens with this run's key."""
    secrets = KeyFiles(tmp_path / "secrets")
    secrets.directory.mkdir()
    secrets.auth_signing.write_text(keys().signing)
    port = free_port()
    log_path = tmp_path / "web.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "shopctl"),
            "web",
            "--port", str(port),
            "--amqp-url", system.amqp_url,
            "--order-url", system.url("order"),
            "--dir", str(secrets.directory),
            "--broker-user-prefix", shop_broker.prefix,
            env={**os.environ, "LOG_FORMAT": "json", "SHOPCTL_TOKEN": ""},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )  # fmt: skip
    view = WebView(f"http://127.0.0.1:{port}", process, log_path)
    async with httpx.AsyncClient(base_url=view.url, timeout=2) as client:

        async def watching() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"shopctl web exited:\n{view.log_tail()}")
            try:
                health = (await client.get("/healthz")).json()
            except httpx.TransportError:
                return False
            return bool(health["broker"]["connected"])

        await wait_until(watching, timeout=60, interval=0.2)
    try:
        yield view
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"shopctl web ignored SIGTERM:\n{view.log_tail()}") from None
        assert code == 0, view.log_tail()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set UI_CHROMIUM)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            await launched.close()
