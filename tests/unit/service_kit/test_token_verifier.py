"""Verified tokens are remembered, but never past what they allow: expiry is checked
on every use, and a token that differs by a byte is checked afresh."""

from __future__ import annotations

import time

import pytest
from service_kit import auth
from service_kit.auth import TokenVerifier
from shopctl.keys import DEFAULT_AUDIENCE, DEFAULT_ISSUER, customer_token

from tests.support.tokens import keys


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def verifier(clock: Clock) -> TokenVerifier:
    verifying = auth._public_key(keys().verifying)
    return TokenVerifier(
        auth.KeySet([verifying]), issuer=DEFAULT_ISSUER, audience=DEFAULT_AUDIENCE, clock=clock
    )


async def test_a_remembered_token_still_expires() -> None:
    clock = Clock()
    check = verifier(clock)
    token = customer_token(keys().signing, "cust-remembered", ttl=60)

    assert (await check.verify(token)).subject == "cust-remembered"
    assert (await check.verify(token)).subject == "cust-remembered"
    clock.now += 60 + auth.LEEWAY_SECONDS + 1
    with pytest.raises(auth.Unauthorized, match="token rejected"):
        await check.verify(token)


async def test_the_signature_is_checked_once_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    check = verifier(Clock())
    token = customer_token(keys().signing, "cust-once")
    decodes = 0
    decode = auth.jwt.decode

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal decodes
        decodes += 1
        return decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(auth.jwt, "decode", counted)
    for _ in range(3):
        await check.verify(token)
    assert decodes == 1


async def test_a_tampered_copy_of_a_remembered_token_is_refused() -> None:
    check = verifier(Clock())
    token = customer_token(keys().signing, "cust-tampered")
    await check.verify(token)
    header, claims, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]

    with pytest.raises(auth.Unauthorized, match="signature"):
        await check.verify(f"{header}.{claims}.{flipped}")


async def test_only_so_many_tokens_are_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS", 2)
    check = verifier(Clock())
    tokens = [customer_token(keys().signing, f"cust-{n}") for n in range(3)]
    for token in tokens:
        await check.verify(token)
    assert list(check._verified) == tokens[1:]
