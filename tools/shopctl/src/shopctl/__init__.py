"""shopctl: the operator's tool for the shop.

Commands (see ``shopctl --help``): ``tail`` the event stream, ``trace`` one order
across services, inspect/replay/purge dead letters (``dlq``), ``setup`` least
privilege on the broker and database from the topology, and a local ``mail-sink``.
"""

__all__: list[str] = []
