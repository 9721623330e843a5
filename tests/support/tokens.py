"""The test run's keys and tokens: one key pair per run, or the ones in
``SHOP_SECRETS_DIR`` (a system someone else runs, e.g. make test-compose), and an
httpx auth that acts as whoever a request needs: the ordering customer for
``POST /orders``, an operator for everything else."""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
from joserfc.jwk import OKPKey
from service_kit.sealing import Opener, Sealer
from shopctl.keys import KeyFiles, customer_token, operator_token


@dataclass(frozen=True, slots=True)
class Keys:
    signing: str  # private: only tests and shopctl sign
    verifying: str  # what services get (AUTH_PUBLIC_KEY)
    sealing_public: str  # the order service seals payment tokens with it
    sealing_private: str  # only the payment service opens them


@cache
def keys() -> Keys:
    directory = os.environ.get("SHOP_SECRETS_DIR")
    if directory:
        files = KeyFiles(Path(directory))
        return Keys(
            signing=files.auth_signing.read_text(),
            verifying=files.auth_verify.read_text(),
            sealing_public=files.payment_sealing_public.read_text(),
            sealing_private=files.payment_sealing.read_text(),
        )
    auth, sealing = OKPKey.generate_key("Ed25519"), OKPKey.generate_key("X25519")
    return Keys(
        signing=auth.as_pem(private=True).decode(),
        verifying=auth.as_pem(private=False).decode(),
        sealing_public=sealing.as_pem(private=False).decode(),
        sealing_private=sealing.as_pem(private=True).decode(),
    )


def service_env() -> dict[str, str]:
    """What a service process needs to verify tokens and seal or open payment tokens."""
    return {
        "AUTH_PUBLIC_KEY": keys().verifying,
        "PAYMENT_PUBLIC_KEY": keys().sealing_public,
        "PAYMENT_PRIVATE_KEY": keys().sealing_private,
    }


def customer(customer_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {customer_token(keys().signing, customer_id)}"}


def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token(keys().signing)}"}


class ShopAuth(httpx.Auth):
    """The customer named in a ``POST /orders`` body for that request; otherwise the
    operator. A request that brings its own Authorization header keeps it."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            request.headers.update(_who(request))
        yield request


def _who(request: httpx.Request) -> dict[str, str]:
    if request.method == "POST" and request.url.path.rstrip("/").endswith("/orders"):
        try:
            body = json.loads(request.content or b"{}")
        except (ValueError, httpx.RequestNotRead):  # not JSON, or a stream left unread
            body = None
        if (
            isinstance(body, dict)
            and isinstance(body.get("customer_id"), str)
            and body["customer_id"]
        ):
            return customer(body["customer_id"])
        return customer("anonymous-test-customer")
    return operator()


def sealer() -> Sealer:
    """Seals card tokens as the order service does, for this run's payment key."""
    return Sealer(keys().sealing_public)


def opener() -> Opener:
    return Opener(keys().sealing_private)
