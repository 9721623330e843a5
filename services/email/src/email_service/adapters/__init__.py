"""The email service's ties to the outside: its database and the SMTP server."""
