"""The inventory's HTTP edge."""
