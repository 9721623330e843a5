"""A consumer as its own OS process, for the SIGTERM test.

Usage: python -m tests.integration.events.consumer_process AMQP_URL DSN SERVICE EXCHANGE GRACE
Its handler blocks forever, so a SIGTERM always lands mid-handler. It prints
"started" once it has received a message, then exits after a graceful stop.
"""

import asyncio
import signal
import sys

import structlog
from events import Broker, ConsumerQueue, EventConsumer, Transaction
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.integration.events.support import PUBLISHERS, REGISTRY, ThingHappened, ThingLost


async def main(amqp_url: str, dsn: str, service: str, exchange: str, grace: float) -> None:
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    sessions = async_sessionmaker(engine)
    stop = asyncio.Event()

    async def never_finishes(event: ThingHappened, tx: Transaction) -> None:
        print("started", flush=True)
        await asyncio.Event().wait()

    broker = Broker(amqp_url, name="sigterm-test")
    spec = ConsumerQueue(
        service=service, bindings=frozenset({ThingHappened.TYPE, ThingLost.TYPE}), exchange=exchange
    )
    consumer = EventConsumer(
        broker=broker,
        queue=spec,
        sessions=sessions,
        handlers={ThingHappened: never_finishes, ThingLost: never_finishes},
        registry=REGISTRY,
        publishers=PUBLISHERS,
        shutdown_grace=grace,
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await broker.start()
    await stop.wait()
    await consumer.stop()
    await broker.stop()
    await engine.dispose()
    print("stopped", flush=True)


if __name__ == "__main__":
    # stdout carries only the markers the test waits for.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    url, dsn, service, exchange, grace = sys.argv[1:6]
    asyncio.run(main(url, dsn, service, exchange, float(grace)))
