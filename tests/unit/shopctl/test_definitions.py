"""The definitions document mirrors the policy and carries only hashes."""

import json

from shopctl.setup import policy
from shopctl.setup.definitions import definitions
from shopctl.setup.passwords import check_rabbitmq_password


def test_definitions_carry_users_permissions_and_topic_permissions() -> None:
    users = policy.broker_users()
    document = definitions(
        users, {"PAYMENT_AMQP_PASSWORD": "pay-secret"}, vhost="/", admin=("admin", "adm")
    )

    assert document["vhosts"] == [{"name": "/"}]
    by_name = {u["name"]: u for u in document["users"]}
    assert set(by_name) == {"admin", "shop_order", "shop_inventory", "shop_payment", "shop_email"}
    assert by_name["admin"]["tags"] == ["administrator"]
    assert by_name["shop_payment"]["tags"] == []
    assert by_name["shop_payment"]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert check_rabbitmq_password("pay-secret", by_name["shop_payment"]["password_hash"])
    assert check_rabbitmq_password("shop_order", by_name["shop_order"]["password_hash"])

    permissions = {p["user"]: p for p in document["permissions"]}
    assert permissions["admin"]["configure"] == ".*"
    assert permissions["shop_payment"]["read"] == users[2].permission.read
    topics = {t["user"]: t for t in document["topic_permissions"]}
    assert topics["shop_payment"] == {
        "user": "shop_payment",
        "vhost": "/",
        "exchange": "events",
        "write": r"^(payment\.authorized|payment\.declined|payment\.voided)$",
        "read": r"^(order\.cancelled|order\.created)$",
    }
    assert "pay-secret" not in json.dumps(document)
