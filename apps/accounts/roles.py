"""What each role may do, as scopes. API clients carry scopes directly."""

from .models import Role, Scope

ALL_SCOPES: frozenset[str] = frozenset(Scope.values)

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.ADMIN: ALL_SCOPES,
    # Dispatchers work the integrations' attention queue; connections, mappings and
    # webhook endpoints hold secrets, so only admins (and keys granted it) manage them.
    Role.DISPATCHER: ALL_SCOPES - {Scope.ACCOUNTS_WRITE, Scope.INTEGRATIONS_MANAGE, Scope.WEBHOOKS_WRITE},
    # Drivers see and act on their own routes and stops only; the selectors narrow
    # the rows, these scopes narrow the endpoints.
    Role.DRIVER: frozenset({Scope.ROUTES_READ, Scope.STOPS_READ, Scope.STOPS_WRITE}),
}

# Scopes an API client may be granted: partner systems never manage people.
API_CLIENT_SCOPES: frozenset[str] = ALL_SCOPES - {Scope.ACCOUNTS_READ, Scope.ACCOUNTS_WRITE}

# A key bound to one order source (a shipper) may only be granted these: anything wider
# (events, routes, hubs, integrations) would show it other shippers' data.
SHIPPER_KEY_SCOPES: frozenset[str] = frozenset(
    # Reports too: a bound key's figures are narrowed to its source (apps/reports).
    {Scope.ORDERS_READ, Scope.ORDERS_WRITE, Scope.WEBHOOKS_READ, Scope.WEBHOOKS_WRITE, Scope.REPORTS_READ}
)
