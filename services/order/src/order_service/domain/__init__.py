"""The ordering business: catalogue prices, the order and its saga, no I/O."""
