"""The payment service: authorizes each order's total with a payment gateway and
voids the authorization when the order is cancelled."""
