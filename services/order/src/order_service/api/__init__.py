"""The HTTP edge of the order service."""
