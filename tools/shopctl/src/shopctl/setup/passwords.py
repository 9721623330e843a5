"""Password hashes computed here, so plain passwords never reach a log or a file.

- RabbitMQ ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + utf8(password)))
  with a 32-bit random salt (RabbitMQ "Credentials and Passwords" guide).
- PostgreSQL ``SCRAM-SHA-256`` verifier (RFC 5802/7677, as ``pg_authid`` stores it):
  ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``; handing PostgreSQL
  the verifier instead of the password keeps the password out of its statement log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

RABBITMQ_HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
RABBITMQ_SALT_BYTES = 4
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SCRAM_SALT_BYTES = 16


def rabbitmq_password_hash(password: str, *, salt: bytes | None = None) -> str:
    salt = os.urandom(RABBITMQ_SALT_BYTES) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def check_rabbitmq_password(password: str, password_hash: str) -> bool:
    salt = base64.b64decode(password_hash)[:RABBITMQ_SALT_BYTES]
    return hmac.compare_digest(rabbitmq_password_hash(password, salt=salt), password_hash)


def scram_sha256_verifier(
    password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    # PostgreSQL applies SASLprep to the password; for the ASCII passwords we generate
    # and recommend that is the identity.
    salt = os.urandom(SCRAM_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
