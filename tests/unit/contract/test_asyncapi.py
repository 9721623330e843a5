"""The AsyncAPI document: generated from the contract, current, valid AsyncAPI 3.0.

``asyncapi-3.0.0.json`` beside this file is AsyncAPI's official JSON Schema for 3.0.0
(a bundle: every definition it refers to, AMQP bindings included, under its own
``$id``), taken unmodified from ``schemas/3.0.0.json`` of the npm package
``@asyncapi/specs@6.11.1`` (Apache-2.0, © AsyncAPI Initiative; licence and notice in
``asyncapi-specs.LICENSE`` and ``asyncapi-specs.NOTICE``; sha256 of the file:
d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626). It is validated
here offline: every ``$ref`` resolves inside the bundle, nothing is fetched.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema
import pytest
import yaml
from events import Envelope, Event
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7
from shop_contract import REGISTRY, SHOP, testing
from shop_contract.asyncapi import HEADER, document, render

ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = ROOT / "docs" / "asyncapi.yaml"
SCHEMA = Path(__file__).with_name("asyncapi-3.0.0.json")
SCHEMA_SHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"
REGENERATE = "uv run python -m shop_contract.asyncapi > docs/asyncapi.yaml  (or: make asyncapi)"
DOC_URI = "urn:shop:asyncapi"


def offline(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # never the network: the bundle must hold every $ref


@cache
def doc() -> dict[str, Any]:
    return document()


def asyncapi_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    registry: Registry[Any] = Registry(retrieve=offline).with_resource(
        schema["$id"], DRAFT7.create_resource(schema)
    )
    # The bundle's definitions each carry an $id: crawling registers them under it.
    return jsonschema.Draft7Validator(schema, registry=registry.crawl())


def test_the_vendored_schema_is_the_published_file() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_the_checked_in_document_is_a_fresh_generation() -> None:
    assert CHECKED_IN.exists(), f"docs/asyncapi.yaml is missing: {REGENERATE}"
    assert CHECKED_IN.read_text() == render(), f"docs/asyncapi.yaml is stale: {REGENERATE}"


def test_the_checked_in_file_reads_back_as_the_document() -> None:
    text = CHECKED_IN.read_text()
    assert text.startswith(HEADER)
    assert yaml.safe_load(text) == json.loads(json.dumps(doc()))


def test_the_document_is_valid_asyncapi_3() -> None:
    validator = asyncapi_validator()
    errors = sorted(validator.iter_errors(yaml.safe_load(CHECKED_IN.read_text())), key=str)
    assert errors == [], "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10]
    )


def test_the_validator_rejects_an_invalid_document() -> None:
    """The schema really is applied (a validator that resolves nothing would pass all)."""
    broken = json.loads(json.dumps(doc()))
    broken["operations"]["orderSendsOrderCreated"]["action"] = "publish"  # AsyncAPI 2 word
    del broken["info"]["version"]
    broken["channels"]["order.created"]["bindings"]["amqp"]["exchange"]["type"] = "pubsub"
    messages = {e.message for e in asyncapi_validator().iter_errors(broken)}
    assert any("publish" in m for m in messages)
    assert any("'version' is a required property" in m for m in messages)
    assert any("pubsub" in m for m in messages), messages


def test_every_routing_key_has_a_channel_on_the_topic_exchange() -> None:
    channels = doc()["channels"]
    keys = set(SHOP.publishers()) | SHOP.consumed_keys | REGISTRY.routing_keys
    for key in keys:
        amqp = channels[key]["bindings"]["amqp"]
        assert channels[key]["address"] == key
        assert amqp["is"] == "routingKey"
        assert amqp["exchange"] == {
            "name": "events",
            "type": "topic",
            "durable": True,
            "autoDelete": False,
        }


def test_every_event_model_has_a_message_with_its_json_schema() -> None:
    components = doc()["components"]
    for model in REGISTRY.models:
        message = components["messages"][model.__name__]
        assert message["name"] == model.TYPE
        assert message["contentType"] == "application/json"
        assert message["correlationId"]["location"] == "$message.payload#/correlation_id"
        payload = message["payload"]
        assert set(payload["properties"]) == set(Envelope.model_fields)
        assert payload["properties"]["type"]["const"] == model.TYPE
        assert payload["properties"]["version"]["const"] == model.VERSION
        assert payload["properties"]["data"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        schema = components["schemas"][model.__name__]
        assert set(schema["properties"]) == set(model.model_fields)
        headers = message["headers"]["properties"]
        assert {"x-schema-version", "x-causation-id", "traceparent"} <= set(headers)
        props = message["bindings"]["amqp"]["x-properties"]
        owner = SHOP.owner_of(model.TYPE)
        assert owner is not None
        assert props == {
            "message_id": "$message.payload#/id",
            "type": model.TYPE,
            "correlation_id": "$message.payload#/correlation_id",
            "content_type": "application/json",
            "delivery_mode": 2,
            "timestamp": "$message.payload#/occurred_at",
            "user_id": SHOP.user_of(owner.name),
        }
        assert message["bindings"]["amqp"]["messageType"] == model.TYPE


def test_the_owner_sends_each_key_as_its_broker_user() -> None:
    sends = [op for op in doc()["operations"].values() if op["action"] == "send"]
    assert len(sends) == len(SHOP.publishers())
    for key, user in SHOP.publishers().items():
        (op,) = [op for op in sends if op["channel"] == {"$ref": f"#/channels/{key}"}]
        assert op["bindings"]["amqp"]["userId"] == user
        assert op["bindings"]["amqp"]["deliveryMode"] == 2
        assert op["bindings"]["amqp"]["mandatory"] is (key in SHOP.consumed_keys)
        assert op["tags"] == [{"name": user.removeprefix("shop_")}]


def test_each_consumer_receives_each_of_its_keys_on_its_own_queue() -> None:
    operations = doc()["operations"]
    receives = [op for op in operations.values() if op["action"] == "receive"]
    assert len(receives) == sum(len(spec.consumes) for spec in SHOP.consumers)
    channels = doc()["channels"]
    for spec in SHOP.consumers:
        queue = SHOP.queue(spec.name)
        channel = channels[queue.name]
        amqp = channel["bindings"]["amqp"]
        assert amqp["is"] == "queue"
        assert amqp["queue"]["name"] == queue.name == f"{spec.name}.events"
        assert amqp["queue"]["durable"] is True
        assert amqp["x-arguments"]["x-queue-type"] == "quorum"
        assert amqp["x-arguments"]["x-dead-letter-exchange"] == f"{spec.name}.events.dlx"
        assert amqp["x-arguments"]["x-dead-letter-routing-key"] == f"{spec.name}.events.dlq"
        assert amqp["x-dead-letter"]["queue"]["name"] == f"{spec.name}.events.dlq"
        assert [r["name"] for r in amqp["x-retry-queues"]] == list(queue.retry_queues)
        assert {b["routingKey"] for b in amqp["x-bindings"]} == spec.consumes
        mine = [op for op in receives if op["tags"] == [{"name": spec.name}]]
        assert {op["title"].split()[-1] for op in mine} == spec.consumes
        for op in mine:
            assert op["channel"] == {"$ref": f"#/channels/{queue.name}"}
            assert op["bindings"]["amqp"]["ack"] is True


def resolve(root: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_every_reference_resolves_and_operations_use_their_channels_messages() -> None:
    document_ = doc()
    for ref in refs(document_):
        resolve(document_, ref)
    for name, op in document_["operations"].items():
        channel = op["channel"]["$ref"]
        for message in op["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/"), name


def envelopes() -> list[tuple[type[Event], dict[str, Any]]]:
    order = uuid4()
    created = testing.order_created(order)
    events: list[Event] = [
        created,
        testing.order_confirmed(order),
        testing.order_cancelled(order),
        testing.inventory_reserved(order),
        testing.inventory_rejected(order),
        testing.payment_authorized(order),
        testing.payment_declined(order),
    ]
    cause = Envelope.wrap(created)
    return [
        (type(event), json.loads(Envelope.wrap(event, caused_by=cause).model_dump_json()))
        for event in events
    ]


@pytest.mark.parametrize(("model", "body"), envelopes(), ids=lambda v: getattr(v, "TYPE", ""))
def test_real_envelopes_match_their_message_schema(model: type[Event], body: Any) -> None:
    registry: Registry[Any] = Registry(retrieve=offline).with_resource(
        DOC_URI, DRAFT7.create_resource(json.loads(json.dumps(doc())))
    )
    pointer = f"{DOC_URI}#/components/messages/{model.__name__}/payload"
    validator = jsonschema.Draft7Validator({"$ref": pointer}, registry=registry)
    assert list(validator.iter_errors(body)) == []
    other = next(m for m in REGISTRY.models if m is not model)
    wrong = {**body, "type": other.TYPE}
    assert list(validator.iter_errors(wrong)) != []


def test_importing_the_generator_loads_no_io_library() -> None:
    probe = (
        "import sys, shop_contract.asyncapi; "
        "print(','.join(m for m in ('aio_pika', 'aiormq', 'sqlalchemy', 'asyncpg', 'yaml') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert loaded == ""
