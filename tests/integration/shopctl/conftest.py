from tests.unit.shopctl.conftest import restore_logging

__all__ = ["restore_logging"]
