"""The order service's configuration, read from environment variables.

Port, broker user and database come from the service's name; everything else
is what every service reads (see ``ServiceSettings``).
"""

from __future__ import annotations

from typing import ClassVar

from service_kit import ServiceSettings


class Settings(ServiceSettings):
    SERVICE: ClassVar[str] = "order"
