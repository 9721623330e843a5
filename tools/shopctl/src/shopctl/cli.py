"""The ``shopctl`` command line: options in, one call into the modules that do the work."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from events import DEFAULT_INBOX_RETENTION
from rich.console import Console
from rich.markup import escape
from shop_contract import SHOP

from shopctl import config
from shopctl.amqp import connected
from shopctl.dlq import queues as dlq_queues
from shopctl.dlq.letters import (
    QueueSummary,
    consumer_user,
    resolve_queue,
    shop_dead_letter_queues,
)
from shopctl.dlq.render import letter_view, summary_table
from shopctl.errors import ShopctlError
from shopctl.keys import (
    DEFAULT_DIR,
    DEFAULT_TTL,
    KeyFiles,
    customer_token,
    ensure_keys,
    operator_token,
    read_signing_key,
)
from shopctl.logs import configure_logging
from shopctl.mailsink import (
    DEFAULT_HOST,
    DEFAULT_MAILDIR,
    DEFAULT_PORT,
    ReceivedMail,
    SinkHandler,
    format_mail,
    serve,
)
from shopctl.setup import policy
from shopctl.setup.definitions import definitions
from shopctl.setup.management import DEFAULT_AMQP_PORT
from shopctl.setup.postgres import apply_databases
from shopctl.setup.rabbitmq import ManagementApi, admin_account, apply_broker
from shopctl.setup.render import broker_table, database_table
from shopctl.tail.lines import OrderClock, TailEvent, format_line
from shopctl.tail.stream import tail as tail_events
from shopctl.trace.render import story_view
from shopctl.trace.sources import ServiceUrls, gather_story
from shopctl.trace.timeline import build_timeline

T = TypeVar("T")

app = typer.Typer(
    name="shopctl",
    help="Operate the shop: watch events, trace orders, handle dead letters, set up access.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
dlq_app = typer.Typer(help="Inspect, replay and purge dead-letter queues.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

out = Console()
err = Console(stderr=True)

AmqpUrl = Annotated[
    str, typer.Option("--amqp-url", envvar=config.AMQP_URL_ENV, help="Broker to connect to.")
]
SecretsDir = Annotated[
    Path, typer.Option("--dir", envvar=config.SECRETS_DIR_ENV, help="Where keys are kept.")
]
OperatorToken = Annotated[
    str | None,
    typer.Option(
        envvar=config.TOKEN_ENV,
        help="An operator's bearer token (default: signed with the development key).",
    ),
]
Queue = Annotated[
    str, typer.Argument(help="A dead-letter queue, e.g. payment.events.dlq (or just payment).")
]


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(envvar="LOG_LEVEL", help="Log level.")] = "INFO",
    log_format: Annotated[
        str, typer.Option(envvar="LOG_FORMAT", help="console or json (logs go to stderr).")
    ] = "console",
) -> None:
    configure_logging(level=log_level, fmt=log_format)


@app.command()
def tail(
    amqp_url: AmqpUrl = config.DEFAULT_AMQP_URL,
    order: Annotated[str | None, typer.Option(help="Only events of this order id.")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds.")
    ] = None,
    exchange: Annotated[str, typer.Option(help="Topic exchange to watch.")] = SHOP.exchange,
) -> None:
    """Print every event as it crosses the broker (from a private queue; Ctrl-C stops)."""
    clock = OrderClock()
    shown = 0

    def show(event: TailEvent) -> None:
        nonlocal shown
        shown += 1
        out.print(format_line(event, clock.elapsed(event)), soft_wrap=True)

    def notice(message: str) -> None:
        err.print(f"[yellow]{escape(message)}[/]", soft_wrap=True)

    err.print(f"[dim]watching exchange {exchange!r}; Ctrl-C to stop[/]")
    _run_until_stopped(
        tail_events(
            amqp_url,
            show,
            exchange=exchange,
            order_id=order,
            count=count,
            timeout=timeout,
            on_notice=notice,
        )
    )
    err.print(f"[dim]{shown} event(s)[/]")


@app.command()
def web(
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP port.")] = 8090,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    amqp_url: AmqpUrl = config.DEFAULT_AMQP_URL,
    order_url: Annotated[
        str, typer.Option(envvar=config.ORDER_URL_ENV, help="Order service (demo orders).")
    ] = config.DEFAULT_ORDER_URL,
    directory: SecretsDir = DEFAULT_DIR,
    token: OperatorToken = None,
    prefix: Annotated[
        str, typer.Option("--broker-user-prefix", envvar="BROKER_USER_PREFIX", help="Of users.")
    ] = "",
) -> None:
    """A live view in the browser: each order's events across services, queues, dead letters."""
    # Imported here: the web server's libraries load only for this command.
    from shopctl.web.server import serve
    from shopctl.web.settings import WebSettings

    settings = WebSettings(
        host=host,
        port=port,
        amqp_url=amqp_url,
        order_url=order_url.rstrip("/"),
        secrets=directory,
        operator_token=token,
        broker_user_prefix=prefix,
    )

    def ready(url: str) -> None:
        err.print(f"[dim]shopctl web on {url} (events from the broker); Ctrl-C to stop[/]")

    _run(serve(settings, on_ready=ready))
    err.print("[dim]stopped[/]")


@app.command()
def trace(
    order_id: Annotated[str, typer.Argument(help="The order id.")],
    order_url: Annotated[
        str, typer.Option(envvar=config.ORDER_URL_ENV, help="Order service.")
    ] = config.DEFAULT_ORDER_URL,
    inventory_url: Annotated[
        str,
        typer.Option(
            envvar=config.INVENTORY_URL_ENV,
            help="Inventory service (keeps no per-order record; not queried).",
        ),
    ] = config.DEFAULT_INVENTORY_URL,
    payment_url: Annotated[
        str, typer.Option(envvar=config.PAYMENT_URL_ENV, help="Payment service.")
    ] = config.DEFAULT_PAYMENT_URL,
    email_url: Annotated[
        str, typer.Option(envvar=config.EMAIL_URL_ENV, help="Email service.")
    ] = config.DEFAULT_EMAIL_URL,
    amqp_url: AmqpUrl = config.DEFAULT_AMQP_URL,
    dead_letters: Annotated[
        bool, typer.Option(help="Look for the order's dead letters in every DLQ.")
    ] = True,
    token: OperatorToken = None,
    directory: SecretsDir = DEFAULT_DIR,
) -> None:
    """The whole story of one order, across services, in time order."""
    if token is None:
        try:
            token = operator_token(read_signing_key(KeyFiles(directory).auth_signing), ttl=60)
        except ShopctlError as exc:
            _fail(f"{exc}; or give an operator's token with --token / {config.TOKEN_ENV}")
    urls = ServiceUrls(
        order=order_url.rstrip("/"),
        inventory=inventory_url.rstrip("/"),
        payment=payment_url.rstrip("/"),
        email=email_url.rstrip("/"),
    )
    story = _run(
        gather_story(order_id, urls=urls, amqp_url=amqp_url if dead_letters else None, token=token)
    )
    out.print(story_view(story, build_timeline(story)))


@dlq_app.command("list")
def dlq_list(
    queues: Annotated[
        list[str] | None, typer.Argument(help="Queues to show (default: every service's DLQ).")
    ] = None,
    amqp_url: AmqpUrl = config.DEFAULT_AMQP_URL,
    limit: Annotated[
        int, typer.Option(min=1, help="Group at most this many messages per queue.")
    ] = dlq_queues.DEFAULT_PEEK_LIMIT,
) -> None:
    """Every dead-letter queue with its depth, its messages grouped by failure."""
    names = [resolve_queue(q) for q in queues] if queues else shop_dead_letter_queues()

    async def summaries() -> list[QueueSummary]:
        async with connected(amqp_url, purpose="dlq list") as connection:
            return [await dlq_queues.summarize(connection, q, limit=limit) for q in names]

    out.print(summary_table(_run(summaries())))


@dlq_app.command("show")
def dlq_show(
    queue: Queue,
    index: Annotated[int, typer.Option(min=0, help="Position in the queue, 0 = head.")] = 0,
    amqp_url: AmqpUrl = config.DEFAULT_AMQP_URL,
) -> None:
    """One dead letter with its headers and body; it stays in the queue, in its place."""
    name = resolve_queue(queue)

    async def show() -> None:
        async with connected(amqp_url, purpose="dlq show") as connection:
            # The whole queue, not index + 1 messages: see dlq.queues on keeping the order.
            letters = await dlq_queues.peek(connection, name)
        if len(letters) <= index:
            raise ShopctlError(f"{name} holds {len(letters)} message(s); no index {index}")
        out.print(letter_view(letters[index]))

    _run(show())


@dlq_app.command("replay")
def dlq_replay(
    queue: Queue,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every message.")] = False,
    message_id: Annotated[
        str | None, typer.Option("--message-id", help="Replay only this message.")
    ] = None,
    amqp_url: AmqpUrl = config.DEFAULT_AMQP_URL,
    as_user: Annotated[
        str | None,
        typer.Option(help="Publish as this broker user (default: the consuming service's)."),
    ] = None,
    prefix: Annotated[
        str, typer.Option("--broker-user-prefix", envvar="BROKER_USER_PREFIX", help="Of users.")
    ] = "",
    inbox_retention: Annotated[
        float,
        typer.Option(
            "--inbox-retention-seconds",
            envvar="INBOX_RETENTION_SECONDS",
            help="The services' inbox retention: older letters are not replayed.",
        ),
    ] = DEFAULT_INBOX_RETENTION.total_seconds(),
    force: Annotated[
        bool, typer.Option(help="Replay letters older than the inbox retention too.")
    ] = False,
) -> None:
    """Send dead letters back to the queue they came from, with a fresh retry budget.

    Letters older than the inbox retention stay: their consumer has forgotten whether
    it handled the event, so a replay could act twice (--force replays them anyway)."""
    if replay_all == (message_id is not None):
        raise typer.BadParameter("give exactly one of --all or --message-id")
    name = resolve_queue(queue)
    user = as_user or consumer_user(name, prefix=prefix)

    async def replay() -> dlq_queues.ReplayResult:
        async with connected(amqp_url, purpose="dlq replay") as connection:
            return await dlq_queues.replay(
                connection,
                name,
                as_user=user,
                inbox_retention=None if force else timedelta(seconds=inbox_retention),
                message_id=message_id,
            )

    result = _run(replay())
    if result.too_old:
        err.print(
            f"[yellow]left {len(result.too_old)} message(s) in {result.queue}: older than the"
            " inbox retention, so the consumer may have handled them already and a replay"
            " could act twice (--force to replay them anyway)[/]"
        )
    if message_id is not None and not result.count:
        if result.too_old:
            raise typer.Exit(code=1)
        _fail(f"no message {message_id} in {name}")
    out.print(f"replayed {result.count} message(s) from {result.queue} to {result.target}")


@dlq_app.command("purge")
def dlq_purge(
    queue: Queue,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    amqp_url: AmqpUrl = config.DEFAULT_AMQP_URL,
) -> None:
    """Delete every message of a dead-letter queue (asks first)."""
    name = resolve_queue(queue)
    if not yes:
        typer.confirm(f"Delete every message in {name}? This cannot be undone", abort=True)

    async def purge() -> int:
        async with connected(amqp_url, purpose="dlq purge") as connection:
            return await dlq_queues.purge(connection, name)

    out.print(f"purged {_run(purge())} message(s) from {name}")


@app.command()
def setup(
    broker: Annotated[bool, typer.Option(help="Set up broker users and permissions.")] = True,
    database: Annotated[bool, typer.Option(help="Set up database roles and databases.")] = True,
    print_definitions: Annotated[
        bool,
        typer.Option(
            "--print-definitions", help="Print a RabbitMQ definitions JSON and change nothing."
        ),
    ] = False,
    rabbitmq_api_url: Annotated[
        str, typer.Option(envvar=config.RABBITMQ_API_URL_ENV, help="RabbitMQ management API.")
    ] = config.DEFAULT_RABBITMQ_API_URL,
    postgres_url: Annotated[
        str, typer.Option(envvar=config.POSTGRES_URL_ENV, help="PostgreSQL, as a superuser.")
    ] = config.DEFAULT_POSTGRES_URL,
    vhost: Annotated[str, typer.Option(help="Broker virtual host.")] = policy.DEFAULT_VHOST,
    prefix: Annotated[
        str, typer.Option(help="Prefix for user, role and database names (tests).")
    ] = "",
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the servers to come up.")
    ] = 60.0,
    amqp_port: Annotated[
        int,
        typer.Option(
            min=1,
            max=65535,
            envvar="SETUP_RABBITMQ_AMQP_PORT",
            help="The broker's AMQP port, on the API's host (tells a plugin that is off).",
        ),
    ] = DEFAULT_AMQP_PORT,
) -> None:
    """Least privilege as code: per-service broker users and databases from the topology."""
    users = [*policy.broker_users(prefix=prefix), policy.operator_user(prefix=prefix)]
    databases = policy.service_databases(prefix=prefix)
    environ = dict(os.environ)
    if print_definitions:
        admin = admin_account(rabbitmq_api_url)
        typer.echo(json.dumps(definitions(users, environ, vhost=vhost, admin=admin), indent=2))
        return

    async def apply() -> list[str]:
        done: list[str] = []
        if broker:
            async with ManagementApi(rabbitmq_api_url) as api:
                done += await apply_broker(
                    api, users, environ, vhost=vhost, wait=wait, amqp_port=amqp_port
                )
        if database:
            done += await apply_databases(postgres_url, databases, environ, wait=wait)
        return done

    if broker:
        out.print(broker_table(users, vhost))
    if database:
        out.print(database_table(databases))
    for line in _run(apply()):
        out.print(f"[green]✓[/] {line}")


@app.command()
def keys(
    directory: SecretsDir = DEFAULT_DIR,
) -> None:
    """Create the development key pairs that are missing (token signing, payment sealing)."""
    for line in ensure_keys(KeyFiles(directory)) or ["keys present; nothing to do"]:
        err.print(f"[green]✓[/] {escape(line)}")


@app.command()
def token(
    customer: Annotated[
        str | None, typer.Option(help="A customer token for this customer id.")
    ] = None,
    operator: Annotated[bool, typer.Option(help="An operator token.")] = False,
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until it expires.")] = DEFAULT_TTL,
    directory: SecretsDir = DEFAULT_DIR,
) -> None:
    """Print a signed bearer token (development identity provider), nothing else."""
    if (customer is None) == (not operator):
        raise typer.BadParameter("give exactly one of --customer ID or --operator")
    try:
        signing = read_signing_key(KeyFiles(directory).auth_signing)
    except ShopctlError as exc:
        _fail(str(exc))
    issued = (
        operator_token(signing, ttl=ttl)
        if customer is None
        else (customer_token(signing, customer, ttl=ttl))
    )
    typer.echo(issued)


@app.command("mail-sink")
def mail_sink(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(min=0, max=65535, help="SMTP port.")] = DEFAULT_PORT,
    maildir: Annotated[
        Path, typer.Option(help="Where each message is kept as an .eml file.")
    ] = DEFAULT_MAILDIR,
    store: Annotated[bool, typer.Option(help="Keep messages in --maildir.")] = True,
) -> None:
    """A local SMTP sink: one line per message received (Ctrl-C stops)."""

    def show(mail: ReceivedMail) -> None:
        out.print(format_mail(mail), soft_wrap=True)

    def ready(bound: int) -> None:
        where = f", saving to {maildir}/" if store else ""
        err.print(f"[dim]SMTP sink on {host}:{bound}{where}; Ctrl-C to stop[/]")

    handler = SinkHandler(maildir=maildir if store else None, on_mail=show)
    _run_until_stopped(serve(handler, host=host, port=port, on_ready=ready))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; an operator error is one red line and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except ShopctlError as exc:
        _fail(str(exc))


def _run_until_stopped(coroutine: Coroutine[Any, Any, T]) -> T | None:
    """Like ``_run``, for commands that run until Ctrl-C or SIGTERM: those end cleanly."""

    async def until_stopped() -> T | None:
        task = asyncio.ensure_future(coroutine)
        # SIGTERM (a process manager, a container stop) ends the command like Ctrl-C.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            return None

    try:
        result = _run(until_stopped())
    except KeyboardInterrupt:
        result = None
    if result is None:
        err.print("[dim]stopped[/]")
    return result


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)
