"""The email service reads its SMTP settings from the environment."""

import pytest
from email_service.settings import Settings


def test_defaults_work_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "SMTP_HOST", "SMTP_PORT", "SMTP_TIMEOUT", "SMTP_FROM", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.port == 8003
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 1025)
    assert settings.smtp_timeout == 10
    assert settings.smtp_from == "Shop <orders@shop.example>"
    assert settings.smtp_starttls is False
    assert settings.database_url.endswith("/shop_email")


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "mailpit")
    monkeypatch.setenv("SMTP_PORT", "2525")
    monkeypatch.setenv("SMTP_TIMEOUT", "2.5")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    settings = Settings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_timeout) == ("mailpit", 2525, 2.5)
    assert settings.smtp_password is not None
    assert "s3cret" not in repr(settings)


def test_bad_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PORT", "70000")
    with pytest.raises(ValueError, match="smtp_port"):
        Settings()
