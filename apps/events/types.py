"""Every event type the platform records. ``docs/events.md`` describes each payload."""

ORDER_CREATED = "order.created"
ORDER_UPDATED = "order.updated"
ORDER_PLANNED = "order.planned"
ORDER_UNPLANNED = "order.unplanned"
ORDER_DISPATCHED = "order.dispatched"
ORDER_OUT_FOR_DELIVERY = "order.out_for_delivery"
ORDER_DELIVERED = "order.delivered"
ORDER_FAILED = "order.failed"
ORDER_CANCELLED = "order.cancelled"
ORDER_RESCHEDULED = "order.rescheduled"
ORDER_RETURNED = "order.returned"
# The customer, on the tracking page.
ORDER_PREFERENCES_UPDATED = "order.preferences_updated"
ORDER_RATED = "order.rated"

STOP_ARRIVED = "stop.arrived"
STOP_COMPLETED = "stop.completed"
STOP_FAILED = "stop.failed"
STOP_CANCELLED = "stop.cancelled"
# The ETA engine predicts a stop past its window (and, later, back inside it).
STOP_LATE_RISK = "stop.late_risk"
STOP_LATE_RISK_CLEARED = "stop.late_risk_cleared"

ROUTE_CREATED = "route.created"
ROUTE_UPDATED = "route.updated"
ROUTE_PUBLISHED = "route.published"
ROUTE_STARTED = "route.started"
ROUTE_COMPLETED = "route.completed"
ROUTE_DELETED = "route.deleted"

HUB_CREATED = "hub.created"
HUB_UPDATED = "hub.updated"
VEHICLE_CREATED = "vehicle.created"
VEHICLE_UPDATED = "vehicle.updated"
DRIVER_CREATED = "driver.created"
DRIVER_UPDATED = "driver.updated"
DRIVER_DUTY_CHANGED = "driver.duty_changed"
DRIVER_LOCATION_STALE = "driver.location_stale"
DRIVER_LOCATION_RESUMED = "driver.location_resumed"

ALL = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
