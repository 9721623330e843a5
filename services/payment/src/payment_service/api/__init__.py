"""The payment service's HTTP edge."""
