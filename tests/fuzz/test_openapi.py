"""Every operation of every service, fuzzed from its own OpenAPI schema: no 5xx, only
documented status codes and content types, answers that match their schemas, invalid
input refused, tokens enforced, unsupported methods 405 with ``Allow``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from email_service.service import SERVICE as EMAIL
from hypothesis import HealthCheck, settings
from inventory_service.service import SERVICE as INVENTORY
from order_service.service import SERVICE as ORDER
from payment_service.service import SERVICE as PAYMENT
from schemathesis import Case

from tests.fuzz.conftest import SENT, schema_of

pytestmark = pytest.mark.timeout(120)

Served = Callable[[str], str]

# A request over loopback to a real server and database on a busy two-core machine:
# a generous deadline per example, so a slow moment is no failure, but a bounded one.
bounded = settings(
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def call(case: Case, served: Served, service: str) -> None:
    response = case.call_and_validate(base_url=served(service), timeout=10)
    SENT[service][response.status_code] += 1


@schema_of(ORDER).parametrize()
@bounded
def test_order(case: Case, served: Served) -> None:
    call(case, served, "order")


@schema_of(INVENTORY).parametrize()
@bounded
def test_inventory(case: Case, served: Served) -> None:
    call(case, served, "inventory")


@schema_of(PAYMENT).parametrize()
@bounded
def test_payment(case: Case, served: Served) -> None:
    call(case, served, "payment")


@schema_of(EMAIL).parametrize()
@bounded
def test_email(case: Case, served: Served) -> None:
    call(case, served, "email")
