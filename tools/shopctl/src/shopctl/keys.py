"""Development keys, made once outside tracked files, and tokens signed with them.

``make setup`` runs ``shopctl keys``: an Ed25519 pair for bearer tokens (the
services get only the public half) and an X25519 pair with which the order
service seals payment tokens for the payment service (which alone gets the
private half). ``shopctl token`` plays the identity provider on a laptop.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from joserfc import jwt
from joserfc.jwk import OKPKey
from shop_contract.auth import (
    CUSTOMER_SCOPES,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    OPERATOR_SCOPES,
    OPERATOR_SUBJECT,
)

from shopctl.errors import ShopctlError

DEFAULT_DIR = Path(".secrets")
DEFAULT_TTL = 3600
ALGORITHM = "Ed25519"  # RFC 9864's name for EdDSA over Ed25519


@dataclass(frozen=True, slots=True)
class KeyFiles:
    directory: Path

    @property
    def auth_signing(self) -> Path:
        return self.directory / "auth-signing.pem"

    @property
    def auth_verify(self) -> Path:
        return self.directory / "auth-verify.pem"

    @property
    def payment_sealing(self) -> Path:
        return self.directory / "payment-sealing.pem"

    @property
    def payment_sealing_public(self) -> Path:
        return self.directory / "payment-sealing.pub.pem"


def ensure_keys(files: KeyFiles) -> list[str]:
    """Create the pairs that are missing; never overwrite one (tokens would break)."""
    files.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    done = []
    pairs: tuple[tuple[Path, Path, Literal["Ed25519", "X25519"], str], ...] = (
        (files.auth_signing, files.auth_verify, "Ed25519", "token signing"),
        (files.payment_sealing, files.payment_sealing_public, "X25519", "payment sealing"),
    )
    for private, public, curve, what in pairs:
        if private.exists() and public.exists():
            continue
        key = OKPKey.generate_key(curve)
        _write(private, key.as_pem(private=True), 0o600)
        _write(public, key.as_pem(private=False), 0o644)
        done.append(f"{what} key pair: {private} (private), {public} (public)")
    return done


def issue_token(
    signing_pem: str,
    *,
    subject: str,
    scopes: tuple[str, ...],
    ttl: int = DEFAULT_TTL,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> str:
    key = OKPKey.import_key(signing_pem)
    if not key.is_private:
        raise ShopctlError("signing a token needs the private key (auth-signing.pem)")
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode({"alg": ALGORITHM, "typ": "JWT"}, claims, key, algorithms=[ALGORITHM])


def customer_token(signing_pem: str, customer_id: str, *, ttl: int = DEFAULT_TTL) -> str:
    return issue_token(signing_pem, subject=customer_id, scopes=CUSTOMER_SCOPES, ttl=ttl)


def operator_token(signing_pem: str, *, ttl: int = DEFAULT_TTL) -> str:
    return issue_token(signing_pem, subject=OPERATOR_SUBJECT, scopes=OPERATOR_SCOPES, ttl=ttl)


def read_signing_key(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ShopctlError(
            f"no signing key at {path}: run `make setup` (or `shopctl keys`)"
        ) from None


def _write(path: Path, content: bytes, mode: int) -> None:
    # Created with its final mode: a private key is never readable by others, even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as out:
        out.write(content)
