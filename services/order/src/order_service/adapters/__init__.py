"""Where the order service touches the outside world: its database, its metrics."""
