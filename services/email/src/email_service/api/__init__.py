"""The email service's HTTP edge."""
