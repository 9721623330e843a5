"""The request fingerprint behind Idempotency-Key."""

from __future__ import annotations

from order_service.domain.idempotency import fingerprint, same_request


def test_key_order_does_not_change_the_fingerprint() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})


def test_any_value_change_does() -> None:
    base = {"items": [{"sku": "A", "quantity": 1}], "payment_token": "tok"}
    other = {"items": [{"sku": "A", "quantity": 2}], "payment_token": "tok"}
    assert not same_request(fingerprint(base), fingerprint(other))
    assert same_request(fingerprint(base), fingerprint(dict(base)))


def test_line_order_is_significant() -> None:
    assert fingerprint({"items": ["a", "b"]}) != fingerprint({"items": ["b", "a"]})


def test_is_a_sha256_hex_digest() -> None:
    digest = fingerprint({})
    assert len(digest) == 64
    int(digest, 16)
