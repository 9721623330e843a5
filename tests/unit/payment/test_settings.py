"""Payment settings come from the environment, with working defaults."""

from decimal import Decimal

import pytest
from payment_service.settings import Settings
from pydantic import ValidationError


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "PAYMENT_AMOUNT_LIMIT", "PAYMENT_GATEWAY_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.port == 8002
    assert settings.payment_amount_limit == Decimal("10000.00")
    assert settings.payment_gateway_timeout == 5.0


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENT_AMOUNT_LIMIT", "250")
    monkeypatch.setenv("PAYMENT_GATEWAY_TIMEOUT", "1.5")

    settings = Settings()

    assert settings.payment_amount_limit == Decimal("250")
    assert settings.payment_gateway_timeout == 1.5


def test_a_limit_with_fractions_of_a_cent_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENT_AMOUNT_LIMIT", "10.001")

    with pytest.raises(ValidationError, match="payment_amount_limit"):
        Settings()
