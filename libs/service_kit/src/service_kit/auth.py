"""Bearer tokens: verified here, never signed here.

A token is a JWT with an asymmetric signature (Ed25519/EdDSA, RS256 or ES256),
an issuer, an audience, an expiry, a subject and space-separated scopes. The
service holds only the public key, from a PEM (file or variable) or a JWKS URL
of a real identity provider. No token or a bad one is ``401`` with
``WWW-Authenticate: Bearer``; a good one without the scope asked for is ``403``.
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from joserfc.jwt import JWTClaimsRegistry
from shop_contract.auth import Scope

log = structlog.get_logger("service_kit.auth")
# "EdDSA" is RFC 9864's legacy name for Ed25519; identity providers still issue it.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", module="joserfc")

# Fully-specified and legacy names of the asymmetric algorithms we accept; a key
# only ever verifies the algorithms of its own type.
ALGORITHMS = ["Ed25519", "EdDSA", "RS256", "ES256"]
LEEWAY_SECONDS = 30
JWKS_REFRESH_SECONDS = 60.0
MAX_TOKEN_LENGTH = 8192
# Tokens whose signature was checked, remembered (least recently used out): a
# client sends the same token with every request until it expires, and checking
# an Ed25519 signature was a tenth of the order API's CPU per POST. Expiry and
# the other claims are still checked on every use.
VERIFIED_TOKENS = 4096

Key = OKPKey | RSAKey | ECKey


class Unauthorized(HTTPException):
    """401: no token, or one we cannot believe."""

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        challenge = "Bearer" if error is None else f'Bearer error="{error}"'
        super().__init__(401, detail=detail, headers={"WWW-Authenticate": challenge})


class Forbidden(HTTPException):
    """403: a good token that does not allow this."""

    def __init__(self, detail: str, *, scope: str | None = None) -> None:
        challenge = 'Bearer error="insufficient_scope"'
        if scope is not None:
            challenge += f', scope="{scope}"'
        super().__init__(403, detail=detail, headers={"WWW-Authenticate": challenge})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the token says."""

    subject: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes


class TokenVerifier:
    """Checks signature, issuer, audience, expiry and subject of a bearer token."""

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._jwks_url = jwks_url
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._fetched_at = 0.0
        self._clock = clock
        self._claims = JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    @classmethod
    def from_pem(cls, pem: str | bytes, *, issuer: str, audience: str) -> TokenVerifier:
        return cls(KeySet([_public_key(pem)]), issuer=issuer, audience=audience)

    @classmethod
    async def from_jwks(cls, url: str, *, issuer: str, audience: str) -> TokenVerifier:
        verifier = cls(KeySet([]), issuer=issuer, audience=audience, jwks_url=url)
        await verifier.refresh()
        return verifier

    async def refresh(self) -> None:
        """Fetch the identity provider's keys again (at most once a minute)."""
        if self._jwks_url is None or self._clock() - self._fetched_at < JWKS_REFRESH_SECONDS:
            return
        self._fetched_at = self._clock()
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(self._jwks_url)
            response.raise_for_status()
        self._keys = KeySet.import_key_set(response.json())
        self._verified.clear()  # a key that was withdrawn vouches for no token any more
        log.info("auth.keys_fetched", keys=len(self._keys.keys))

    async def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("token too long")
        claims = self._verified.get(token)
        if claims is None:
            claims = await self._signed_claims(token)
            self._verified[token] = claims
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        try:
            self._claims.validate(claims)
        except JoseError as exc:
            self._verified.pop(token, None)
            raise Unauthorized(f"token rejected: {exc.description or exc.error}") from exc
        subject, scope = claims.get("sub"), claims.get("scope", "")
        if not isinstance(subject, str) or not subject or not isinstance(scope, str):
            raise Unauthorized("token has no usable subject or scope")
        return Principal(subject=subject, scopes=frozenset(scope.split()))

    async def _signed_claims(self, token: str) -> dict[str, Any]:
        """The token's claims, if its signature is one of our keys'."""
        try:
            decoded = jwt.decode(token, self._keys, algorithms=ALGORITHMS)
        except ValueError as exc:
            # An unknown key id may be a rotated key: look again, once.
            if self._jwks_url is None or "kid" not in str(exc):
                raise Unauthorized("token signature not valid") from exc
            await self.refresh()
            try:
                decoded = jwt.decode(token, self._keys, algorithms=ALGORITHMS)
            except (JoseError, ValueError) as again:
                raise Unauthorized("token signature not valid") from again
        except JoseError as exc:
            raise Unauthorized("token signature not valid") from exc
        return dict(decoded.claims)


def _public_key(pem: str | bytes) -> Key:
    data = pem.encode() if isinstance(pem, str) else pem
    for kind in (OKPKey, RSAKey, ECKey):
        try:
            key = kind.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
        if key.is_private:
            raise RuntimeError("the token-verifying key must be a public key, not a private one")
        return key
    raise RuntimeError("the token-verifying key is not a PEM public key (Ed25519, RSA or EC)")


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required", error=None)
    verifier: TokenVerifier | None = request.app.state.runtime.verifier
    if verifier is None:  # a worker serves no route that asks for a token
        raise Unauthorized("this process does not accept requests that need a token")
    return await verifier.verify(credentials.credentials)


CallerDep = Annotated[Principal, Depends(current_principal)]
"""Any caller with a valid token: the route decides what the scopes allow."""


def requires(*scopes: str) -> Callable[..., Any]:
    """A dependency: the caller, who must hold at least one of ``scopes``."""

    async def check(principal: CallerDep) -> Principal:
        if not any(principal.may(scope) for scope in scopes):
            raise Forbidden(f"this needs the scope {' or '.join(scopes)}", scope=" ".join(scopes))
        return principal

    return check


OperatorDep = Annotated[Principal, Depends(requires(Scope.OPERATE))]
"""An operator: everything but placing orders."""

# What the OpenAPI document says a route that needs a token may answer.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, a bad signature, or an expired token"},
    403: {"description": "A valid token without the scope this needs"},
}
