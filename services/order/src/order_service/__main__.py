"""``order-service [serve|migrate]``."""

import service_kit

from order_service.service import SERVICE


def main() -> None:
    service_kit.main(SERVICE)


if __name__ == "__main__":
    main()
