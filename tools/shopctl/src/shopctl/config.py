"""Environment variable names and the defaults that work on a developer machine."""

from __future__ import annotations

AMQP_URL_ENV = "SHOPCTL_AMQP_URL"
# The operator account ``shopctl setup`` creates (it may replay dead letters).
DEFAULT_AMQP_URL = "amqp://shop_operator:shop_operator@127.0.0.1:5672/"

ORDER_URL_ENV = "ORDER_URL"
INVENTORY_URL_ENV = "INVENTORY_URL"
PAYMENT_URL_ENV = "PAYMENT_URL"
EMAIL_URL_ENV = "EMAIL_URL"
DEFAULT_ORDER_URL = "http://127.0.0.1:8000"
DEFAULT_INVENTORY_URL = "http://127.0.0.1:8001"
DEFAULT_PAYMENT_URL = "http://127.0.0.1:8002"
DEFAULT_EMAIL_URL = "http://127.0.0.1:8003"

RABBITMQ_API_URL_ENV = "SETUP_RABBITMQ_API_URL"
DEFAULT_RABBITMQ_API_URL = "http://guest:guest@127.0.0.1:15672"
POSTGRES_URL_ENV = "SETUP_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

DEFAULT_HTTP_TIMEOUT = 5.0  # seconds, for every outbound HTTP call
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds, for AMQP and PostgreSQL connections

SECRETS_DIR_ENV = "SHOP_SECRETS_DIR"
TOKEN_ENV = "SHOPCTL_TOKEN"  # noqa: S105 (the name of a variable)
