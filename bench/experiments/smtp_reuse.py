"""How much of an email's client CPU is the connection: aiosmtplib.send (a new
connection per message, as the email service does), the same with the EHLO name
given (no socket.getfqdn() in a thread per message), and one kept-open client.

``uv run python -m bench.experiments.smtp_reuse`` (starts its own sink).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from email.message import EmailMessage

import aiosmtplib

from bench.stack import SmtpSink

HOSTNAME = socket.getfqdn()  # once, as proposed for SmtpMailSender


def message(i: int) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Shop <orders@shop.example>"
    m["To"] = "buyer@example.com"
    m["Subject"] = f"Order {i} received"
    m["X-Order-Id"] = f"order-{i}"
    m["X-Email-Kind"] = "received"
    m.set_content("Thank you for your order.\n" * 10)
    return m


async def main(n: int = 400) -> None:
    sink = SmtpSink()
    await sink.start()
    try:
        for round_ in range(2):
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(n):
                await aiosmtplib.send(
                    message(i), hostname="127.0.0.1", port=sink.port, start_tls=False
                )
            new = (time.perf_counter() - start, time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(n):
                await aiosmtplib.send(
                    message(i),
                    hostname="127.0.0.1",
                    port=sink.port,
                    start_tls=False,
                    local_hostname=HOSTNAME,
                )
            named = (time.perf_counter() - start, time.process_time() - cpu)
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, start_tls=False)
            await client.connect()
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(n):
                await client.send_message(message(i))
            kept = (time.perf_counter() - start, time.process_time() - cpu)
            await client.quit()
            print(
                f"round {round_}: new connection + local_hostname given "
                f"{named[0] / n * 1000:.2f} ms wall, {named[1] / n * 1000:.2f} ms client CPU"
            )
            print(
                f"round {round_}: new connection per message {new[0] / n * 1000:.2f} ms wall, "
                f"{new[1] / n * 1000:.2f} ms client CPU; "
                f"kept open {kept[0] / n * 1000:.2f} ms wall, "
                f"{kept[1] / n * 1000:.2f} ms client CPU"
            )
    finally:
        await sink.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 400))
