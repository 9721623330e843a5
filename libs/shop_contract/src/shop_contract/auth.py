"""Who may call what: the scopes a token carries, and whom tokens are for.

Customers place orders and read their own; operators do everything else. The
services only verify tokens (issuer, audience, expiry, signature); who signs
them is the identity provider's business (``shopctl token`` on a laptop).
"""

from __future__ import annotations

from typing import Final


class Scope:
    PLACE_ORDERS: Final = "orders:place"
    READ_OWN_ORDERS: Final = "orders:read"
    OPERATE: Final = "shop:operate"


CUSTOMER_SCOPES: Final = (Scope.PLACE_ORDERS, Scope.READ_OWN_ORDERS)
OPERATOR_SCOPES: Final = (Scope.OPERATE,)
OPERATOR_SUBJECT: Final = "operator"

DEFAULT_ISSUER: Final = "shopctl"
DEFAULT_AUDIENCE: Final = "shop"
