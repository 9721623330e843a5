from order_service.adapters.tables import metadata
from service_kit import run_env

run_env(metadata)
