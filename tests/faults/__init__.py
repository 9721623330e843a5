"""Fault-injection tier: the real system (four service processes, RabbitMQ,
PostgreSQL, an SMTP sink) driven with orders while something breaks, then checked
against the invariants in ``invariants.py``. Each test prints one ``[faults]``
line of what it measured. Node-wide broker faults (stop_app, memory alarm) are
kept short and always undone."""
