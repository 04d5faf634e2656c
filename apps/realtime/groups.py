"""Channel-layer group names. One group per audience: never one global group
filtered in the consumer (a tenant's traffic must not reach another's socket)."""


def org_group(org_id: int) -> str:
    return f"org.{org_id}"


def driver_group(driver_id: int) -> str:
    return f"driver.{driver_id}"


def track_group(order_id: int) -> str:
    return f"track.{order_id}"


def user_group(user_id: int) -> str:
    """Control messages for one person's sockets (e.g. "your access was revoked")."""
    return f"user.{user_id}"
