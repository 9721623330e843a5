"""The email service: tells customers what happened to their orders, exactly once.

It consumes ``order.created``, ``order.confirmed`` and ``order.cancelled``, sends
one email per order and kind over SMTP, records it in ``emails`` and announces it
with ``email.sent``. ``GET /emails`` shows what was sent.
"""
