"""A secret sealed for one service: only the holder of the private key can read it.

The payment token a customer sends must reach the payment service and nobody
else, though it travels in ``order.created`` to every consumer, sits in the
outbox and may end up in a dead-letter queue. The order service seals it with
the payment service's public key (JWE, ECDH-ES with X25519, AES-256-GCM);
only the payment service can open it.
"""

from __future__ import annotations

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

HEADER = {"alg": "ECDH-ES", "enc": "A256GCM"}


class SealError(Exception):
    """A sealed value that cannot be opened with our key: someone else's, or tampered."""


class Sealer:
    """Seals values for the holder of ``public_pem``'s private key."""

    def __init__(self, public_pem: str) -> None:
        key = OKPKey.import_key(public_pem)
        if key.is_private:
            raise RuntimeError("a sealing key must be the public one; keep the private key out")
        self._key = key

    def seal(self, secret: str) -> str:
        return jwe.encrypt_compact(HEADER, secret.encode(), self._key)


class Opener:
    """Opens values sealed for ``private_pem``."""

    def __init__(self, private_pem: str) -> None:
        key = OKPKey.import_key(private_pem)
        if not key.is_private:
            raise RuntimeError("opening sealed values needs the private key")
        self._key = key

    def open(self, sealed: str) -> str:
        try:
            plaintext = jwe.decrypt_compact(sealed, self._key).plaintext
        except (JoseError, ValueError) as exc:
            raise SealError(f"cannot open this sealed value: {exc}") from exc
        if plaintext is None:
            raise SealError("the sealed value is empty")
        return plaintext.decode()
