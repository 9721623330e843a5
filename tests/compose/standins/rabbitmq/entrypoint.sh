#!/bin/sh
# TEST STAND-IN entrypoint: the official image's environment variables, as a config file.
set -eu
if [ "${1:-}" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
    {
        echo "# written by the test stand-in's entrypoint"
        echo "listeners.tcp.default = 5672"
        echo "management.tcp.port = 15672"
        echo "loopback_users = none"
        echo "default_user = ${RABBITMQ_DEFAULT_USER:-guest}"
        echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}"
        echo "default_vhost = ${RABBITMQ_DEFAULT_VHOST:-/}"
    } >/etc/rabbitmq/rabbitmq.conf
    chown rabbitmq:rabbitmq /etc/rabbitmq/rabbitmq.conf
    chmod 600 /etc/rabbitmq/rabbitmq.conf
    mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
    export HOME=/var/lib/rabbitmq
    cd /var/lib/rabbitmq
    # /usr/lib/rabbitmq/bin/rabbitmq-server turns SIGTERM into a clean `rabbitmqctl stop`.
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
fi
exec "$@"
