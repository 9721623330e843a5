"""``shopctl web``: the event flow live in a browser, served from this machine.

``observe`` reads what crosses the broker, ``timeline`` arranges it per order,
``stream`` fans it out to browsers (server-sent events), ``broker`` watches the
exchange and the queues, ``actions`` places demo orders and replays dead letters,
``app`` is the Starlette application and ``server`` runs it. The page itself is
package data in ``static/``: no CDN, no internet.
"""
