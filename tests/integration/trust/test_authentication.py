"""Bearer tokens, exactly as the contract says: who may call what.

Before this, nothing asked for a token: ``GET /emails`` listed every customer's
mail and anyone could ``PUT /stock`` to zero.
"""

import time
import uuid

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey
from shop_contract.auth import CUSTOMER_SCOPES, OPERATOR_SCOPES
from shopctl.keys import ALGORITHM, issue_token

from tests.support.tokens import customer, keys, operator

pytestmark = pytest.mark.timeout(90)

Apps = dict[str, httpx.AsyncClient]

# (service, method, path, body): everything that needs a token, besides the orders.
OPERATOR_ONLY = [
    ("inventory", "PUT", "/stock/MOUSE-01", {"available": 5}),
    ("payment", "GET", f"/payments/{uuid.uuid4()}", None),
    ("email", "GET", f"/emails?order_id={uuid.uuid4()}", None),
]
PUBLIC = [
    ("order", "/products"),
    ("inventory", "/stock/MOUSE-01"),
    *(
        (service, path)
        for service in ("order", "inventory", "payment", "email")
        for path in ("/healthz", "/readyz", "/metrics")
    ),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def order_for(customer_id: str) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "email": "buyer@example.com",
        "items": [{"sku": "MOUSE-01", "quantity": 1}],
        "payment_token": "tok_visa",
    }


async def call(
    apps: Apps, service: str, method: str, path: str, body: object, headers: dict[str, str]
) -> httpx.Response:
    # An explicit Authorization header (even an empty one) replaces the test client's own.
    return await apps[service].request(method, path, json=body, headers=headers)


def no_token() -> dict[str, str]:
    return {"Authorization": ""}


def bad_tokens() -> dict[str, dict[str, str]]:
    now = int(time.time())
    stranger = OKPKey.generate_key("Ed25519")
    signed = keys().signing
    base = {"iss": "shopctl", "aud": "shop", "sub": "operator", "scope": " ".join(OPERATOR_SCOPES)}
    return {
        "no token": no_token(),
        "not a JWT": bearer("not.a.token"),
        "another key's signature": bearer(
            jwt.encode(
                {"alg": ALGORITHM}, {**base, "exp": now + 60}, stranger, algorithms=[ALGORITHM]
            )
        ),
        "expired": bearer(
            issue_token(signed, subject="operator", scopes=OPERATOR_SCOPES, ttl=-120)
        ),
        "another audience": bearer(
            issue_token(signed, subject="operator", scopes=OPERATOR_SCOPES, audience="elsewhere")
        ),
        "another issuer": bearer(
            issue_token(signed, subject="operator", scopes=OPERATOR_SCOPES, issuer="mallory")
        ),
        "basic auth": {"Authorization": "Basic b3BlcmF0b3I6b3BlcmF0b3I="},
    }


# One system for many requests: the cases loop inside a test (starting four services
# per case would cost minutes), and every miss is reported together.


async def test_no_token_or_a_bad_one_is_401_with_a_bearer_challenge(apps: Apps) -> None:
    misses = []
    for service, method, path, body in OPERATOR_ONLY:
        for what, headers in bad_tokens().items():
            response = await call(apps, service, method, path, body, headers)
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code != 401 or not challenge.startswith("Bearer"):
                misses.append((service, path, what, response.status_code, challenge))
    assert misses == []


async def test_a_customer_token_is_403_where_operators_are_needed(apps: Apps) -> None:
    misses = []
    for service, method, path, body in OPERATOR_ONLY:
        response = await call(apps, service, method, path, body, customer("c-1"))
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 403 or 'error="insufficient_scope"' not in challenge:
            misses.append((service, path, response.status_code, challenge))
    assert misses == []


async def test_restocking_as_an_operator_works(apps: Apps) -> None:
    response = await call(apps, "inventory", "PUT", "/stock/MOUSE-01", {"available": 7}, operator())
    assert response.status_code == 200
    assert response.json()["available"] == 7


async def test_the_public_endpoints_need_no_token(apps: Apps) -> None:
    statuses = {
        (service, path): (await call(apps, service, "GET", path, None, no_token())).status_code
        for service, path in PUBLIC
    }
    assert set(statuses.values()) == {200}, statuses


async def test_a_customer_orders_only_for_themself(apps: Apps) -> None:
    assert (
        await call(apps, "order", "POST", "/orders", order_for("c-1"), no_token())
    ).status_code == 401
    mine = await call(apps, "order", "POST", "/orders", order_for("c-1"), customer("c-1"))
    assert mine.status_code == 202
    theirs = await call(apps, "order", "POST", "/orders", order_for("c-2"), customer("c-1"))
    assert theirs.status_code == 403
    as_operator = await call(apps, "order", "POST", "/orders", order_for("c-1"), operator())
    assert as_operator.status_code == 403, "an operator is not a customer"


async def test_an_order_is_seen_by_its_customer_and_operators_and_nobody_else(apps: Apps) -> None:
    placed = await call(apps, "order", "POST", "/orders", order_for("c-1"), customer("c-1"))
    path = f"/orders/{placed.json()['id']}"

    assert (await call(apps, "order", "GET", path, None, customer("c-1"))).status_code == 200
    assert (await call(apps, "order", "GET", path, None, operator())).status_code == 200
    other = await call(apps, "order", "GET", path, None, customer("c-2"))
    assert other.status_code == 404, "as if it did not exist"
    assert other.json() == (
        await call(apps, "order", "GET", f"/orders/{uuid.uuid4()}", None, customer("c-2"))
    ).json() | {"detail": other.json()["detail"]}
    assert (await call(apps, "order", "GET", path, None, no_token())).status_code == 401


async def test_a_token_for_customers_carries_only_customer_scopes() -> None:
    token = customer("c-9")["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, OKPKey.import_key(keys().verifying), algorithms=[ALGORITHM]).claims
    assert claims["sub"] == "c-9"
    assert set(claims["scope"].split()) == set(CUSTOMER_SCOPES)
    assert claims["exp"] > time.time()
