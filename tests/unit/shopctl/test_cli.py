"""The command line's own checks and the commands that need no server."""

import json

import pytest
from shopctl.cli import app
from shopctl.setup.passwords import check_rabbitmq_password
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("restore_logging")
runner = CliRunner()


def test_every_command_is_listed() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("tail", "trace", "dlq", "setup", "mail-sink"):
        assert command in result.output


def test_replay_needs_exactly_one_of_all_or_message_id() -> None:
    assert runner.invoke(app, ["dlq", "replay", "payment"]).exit_code == 2
    both = runner.invoke(app, ["dlq", "replay", "payment", "--all", "--message-id", "m"])
    assert both.exit_code == 2


def test_purge_without_yes_asks_and_a_no_changes_nothing() -> None:
    result = runner.invoke(app, ["dlq", "purge", "payment"], input="n\n")
    assert result.exit_code == 1
    assert "Delete every message in payment.events.dlq?" in result.output


def test_print_definitions_uses_the_environment_and_changes_nothing() -> None:
    result = runner.invoke(
        app,
        ["setup", "--print-definitions"],
        env={
            "SETUP_RABBITMQ_API_URL": "http://admin:adm-pw@rabbitmq:15672",
            "EMAIL_AMQP_PASSWORD": "mail-pw",
        },
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    users = {u["name"]: u for u in document["users"]}
    assert check_rabbitmq_password("adm-pw", users["admin"]["password_hash"])
    assert check_rabbitmq_password("mail-pw", users["shop_email"]["password_hash"])
    assert "mail-pw" not in result.stdout
