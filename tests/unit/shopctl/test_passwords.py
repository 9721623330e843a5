"""Password hashes against published known answers."""

import base64
import hmac

from shopctl.setup.passwords import (
    check_rabbitmq_password,
    rabbitmq_password_hash,
    scram_sha256_verifier,
)


def test_rabbitmq_sha256_hash_matches_the_documented_example() -> None:
    # RabbitMQ "Credentials and Passwords" guide: salt 908D C60A, password test12.
    salt = bytes.fromhex("908DC60A")
    assert (
        rabbitmq_password_hash("test12", salt=salt)
        == "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    )


def test_rabbitmq_hashes_are_salted_and_verifiable() -> None:
    first, second = rabbitmq_password_hash("pw"), rabbitmq_password_hash("pw")
    assert first != second
    assert check_rabbitmq_password("pw", first)
    assert not check_rabbitmq_password("other", first)


def test_scram_verifier_reproduces_the_rfc_7677_server_signature() -> None:
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_sha256_verifier("pencil", salt=salt)
    scheme, rest = verifier.split("$", 1)
    assert scheme == "SCRAM-SHA-256"
    params, keys = rest.split("$")
    assert params == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    _, server_key = (base64.b64decode(k) for k in keys.split(":"))
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (
        f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    )
    signature = hmac.digest(server_key, auth_message.encode(), "sha256")
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
