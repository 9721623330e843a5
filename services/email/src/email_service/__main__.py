"""``email-service [serve|migrate]``."""

import service_kit

from email_service.service import SERVICE


def main() -> None:
    service_kit.main(SERVICE)


if __name__ == "__main__":
    main()
