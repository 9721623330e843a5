import pytest
from fastapi import FastAPI, Request
from httpx import ASGITransport, AsyncClient
from service_kit.database import create_engine
from service_kit.http import BodySizeLimit
from service_kit.settings import ServiceSettings, to_driver_url
from sqlalchemy.pool import QueuePool


class Settings(ServiceSettings):
    SERVICE = "payment"


def test_per_service_defaults_derive_from_its_name() -> None:
    settings = Settings()
    assert settings.port == 8002
    assert settings.amqp_url == "amqp://shop_payment:shop_payment@127.0.0.1:5672/"
    assert settings.database_url.endswith("@127.0.0.1:5432/shop_payment")
    assert settings.database_url.startswith("postgresql://shop_payment:")


def test_database_url_accepts_plain_and_driver_schemes() -> None:
    settings = Settings(database_url="postgresql://u:p@h:5432/db")
    assert settings.sqlalchemy_url == "postgresql+asyncpg://u:p@h:5432/db"
    assert settings.asyncpg_dsn == "postgresql://u:p@h:5432/db"
    assert to_driver_url("postgresql+asyncpg://h/db", "postgresql") == "postgresql://h/db"
    with pytest.raises(ValueError, match="not a database URL"):
        to_driver_url("nonsense", "postgresql")


def test_settings_come_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("LOG_FORMAT", "json")
    settings = Settings()
    assert (settings.port, settings.log_format) == (9123, "json")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()


def test_pool_size_is_configurable_and_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "5")
    settings = Settings()
    assert settings.db_pool_size == 5
    # No connection is opened here: an engine connects on first use.
    engine = create_engine(settings.sqlalchemy_url, pool_size=settings.db_pool_size)
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool._max_overflow) == (5, 0)
    monkeypatch.setenv("DB_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="db_pool_size"):
        Settings()


def echo_app(limit: int) -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app.add_middleware(BodySizeLimit, max_bytes=limit)
    return app


async def test_body_limit_rejects_declared_and_chunked_bodies() -> None:
    async with AsyncClient(transport=ASGITransport(app=echo_app(1024)), base_url="http://t") as c:
        assert (await c.post("/echo", content=b"x" * 1024)).json() == {"size": 1024}
        assert (await c.post("/echo", content=b"x" * 1025)).status_code == 413

        async def chunks():  # no Content-Length: the limit must count what arrives
            for _ in range(10):
                yield b"x" * 200

        response = await c.post("/echo", content=chunks())
        assert response.status_code == 413
        assert "too large" in response.json()["detail"]
