"""The payment service's ways out: its database and the payment gateway."""
