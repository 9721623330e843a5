"""Where the inventory meets the outside world: its database tables and queries."""
