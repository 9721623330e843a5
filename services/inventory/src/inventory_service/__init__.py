"""The inventory service: stock per SKU, reserved, released and committed for orders."""
