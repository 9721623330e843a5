"""The order service: catalogue, orders, and the join of the order saga."""
