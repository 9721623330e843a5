"""Cluster tier: a real three-node RabbitMQ cluster on this machine (see
``tests/support/rabbit_cluster.py``), with quorum queues and node faults (kill -9,
stop_app, traffic blocked). Each fault test prints one ``[cluster]`` line of the
recovery times it measured."""
