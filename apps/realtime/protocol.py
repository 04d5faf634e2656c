"""Who may connect to which live stream, what they see, and how they catch up.

Synchronous and database-backed; consumers call it through database_sync_to_async.
"""

from __future__ import annotations

import threading
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Role
from apps.events.models import Event
from apps.events.selectors import event_last_sequence

from .groups import driver_group, org_group, track_group
from .messages import event_message

# Further behind than this, a client gets a snapshot instead of a replay: cheaper
# to send and simpler to apply than hundreds of deltas.
REPLAY_LIMIT = 500


@dataclass(frozen=True)
class Audience:
    kind: str
    org_id: int
    groups: list[str]
    last_seq: int
    user_id: int | None = None
    driver_id: int | None = None
    order_id: int | None = None
    route_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CatchUp:
    seq: int
    events: list[dict[str, Any]]
    snapshot: dict[str, Any] | None = None


def _membership(user: Any) -> Any:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return getattr(user, "membership", None)


def console_audience(user: Any) -> tuple[Audience | None, int]:
    from .consumers import CloseCode

    if user is None or not user.is_authenticated:
        return None, CloseCode.UNAUTHENTICATED
    membership = _membership(user)
    if membership is None or membership.role not in (Role.ADMIN, Role.DISPATCHER):
        return None, CloseCode.FORBIDDEN
    org_id = membership.org_id
    return Audience(kind="console", org_id=org_id, groups=[org_group(org_id)], user_id=user.pk,
                    last_seq=event_last_sequence(org=membership.org)), 0


def _driver_route_ids(driver_id: int) -> list[int]:
    """Routes a driver's stream covers: today's and yesterday's (a night shift spans midnight)."""
    from apps.dispatch.models import Route

    since = timezone.now().date() - timedelta(days=1)
    return list(Route.objects.filter(driver_id=driver_id, date__gte=since).values_list("pk", flat=True))


def driver_audience(user: Any) -> tuple[Audience | None, int]:
    from .consumers import CloseCode

    if user is None or not user.is_authenticated:
        return None, CloseCode.UNAUTHENTICATED
    membership = _membership(user)
    driver = getattr(user, "driver_profile", None)
    if membership is None or membership.role != Role.DRIVER or driver is None or not driver.active:
        return None, CloseCode.FORBIDDEN
    return Audience(kind="driver", org_id=membership.org_id, groups=[driver_group(driver.pk)], user_id=user.pk,
                    driver_id=driver.pk, route_ids=_driver_route_ids(driver.pk),
                    last_seq=event_last_sequence(org=membership.org)), 0


def track_audience(token: str) -> tuple[Audience | None, int]:
    from apps.tracking.selectors import tracking_order

    from .consumers import CloseCode

    order = tracking_order(token=token)
    if order is None:
        return None, CloseCode.NOT_FOUND
    return Audience(kind="track", org_id=order.org_id, groups=[track_group(order.pk)], order_id=order.pk,
                    last_seq=event_last_sequence(org=order.org)), 0


def _relevant(ctx: Audience, after: int) -> QuerySet[Event]:
    qs = Event.objects.filter(org_id=ctx.org_id, sequence__gt=after).order_by("sequence")
    if ctx.kind == "driver":
        route_ids = _driver_route_ids(ctx.driver_id) if ctx.driver_id else []
        qs = qs.filter(Q(subject_type="driver", subject_id=str(ctx.driver_id)) | Q(payload__route_id__in=route_ids))
    elif ctx.kind == "track":
        qs = qs.filter(subject_type="order", subject_id=str(ctx.order_id), type__startswith="order.")
    return qs


@dataclass(frozen=True)
class LogSlice:
    """An organization's events in (``after``, ``upto``], read once for every socket of
    the organization in a process, with what each audience needs to pick its own."""

    after: int
    upto: int
    events: list[dict[str, Any]]
    route_drivers: dict[int, int]  # route id -> driver id, for the routes the events name


def org_log_slice(org_id: int, after: int, upto: int) -> LogSlice:
    """Two queries whatever the number of sockets: the events, and who drives the routes
    they name (as ``_relevant`` decides it: routes of today and yesterday)."""
    from apps.dispatch.models import Route

    events = list(Event.objects.filter(org_id=org_id, sequence__gt=after, sequence__lte=upto).order_by("sequence"))
    route_ids = {e.payload.get("route_id") for e in events if isinstance(e.payload, dict)}
    route_ids = {r for r in route_ids if isinstance(r, int) and not isinstance(r, bool)}
    route_drivers: dict[int, int] = {}
    if route_ids:
        since = timezone.now().date() - timedelta(days=1)
        route_drivers = dict(Route.objects.filter(pk__in=route_ids, date__gte=since).exclude(driver=None)
                             .values_list("pk", "driver_id"))
    return LogSlice(after=after, upto=upto, events=[event_message(e) for e in events], route_drivers=route_drivers)


def concerns(ctx: Audience, event: dict[str, Any], route_drivers: dict[int, int]) -> bool:
    """Whether ``event`` (an event message) is in this audience's stream: the in-memory
    twin of ``_relevant``, for a ``LogSlice``."""
    if ctx.kind == "console":
        return True
    if ctx.kind == "driver":
        if event["subject_type"] == "driver" and event["subject_id"] == str(ctx.driver_id):
            return True
        payload = event["payload"]
        route_id = payload.get("route_id") if isinstance(payload, dict) else None
        return ctx.driver_id is not None and isinstance(route_id, int) and route_drivers.get(route_id) == ctx.driver_id
    return (event["subject_type"] == "order" and event["subject_id"] == str(ctx.order_id)
            and event["type"].startswith("order."))


def org_log_head(org_id: int) -> int:
    from apps.events.models import OrgEventCounter

    return OrgEventCounter.objects.filter(org_id=org_id).values_list("last", flat=True).first() or 0


def log_head(ctx: Audience) -> int:
    return org_log_head(ctx.org_id)


def catch_up(ctx: Audience, from_seq: int, *, force_snapshot: bool = False) -> CatchUp:
    """Events after ``from_seq`` for this audience, or a snapshot when replaying would
    not do: asked for, too far behind, or a position ahead of the log (a database
    restore, a different server)."""
    head = log_head(ctx)
    if force_snapshot or from_seq > head or head - from_seq > REPLAY_LIMIT:
        return CatchUp(seq=head, events=[], snapshot=snapshot(ctx, head))
    events = list(_relevant(ctx, from_seq).filter(sequence__lte=head)[: REPLAY_LIMIT + 1])
    if len(events) > REPLAY_LIMIT:
        return CatchUp(seq=head, events=[], snapshot=snapshot(ctx, head))
    return CatchUp(seq=head, events=[event_message(e) for e in events])


class SharedSnapshots:
    """A console snapshot depends only on the organization and the log head, so consoles
    of one organization that ask together (every dispatcher's screen reconnecting after a
    deploy or a Redis restart) share one build: its queries, and the serializers' work
    and memory, which for thousands of drivers is tens of MB while it lasts. Kept for
    TTL_S at most and only while the head has not moved: the positions in it are that
    old at most, and the console merges newer ones by device time."""

    TTL_S = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._org_locks: dict[int, threading.Lock] = {}
        self._cache: dict[int, tuple[int, float, dict[str, Any]]] = {}

    def get(self, org_id: int, head: int, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            org_lock = self._org_locks.setdefault(org_id, threading.Lock())
        with org_lock:  # a second console waits for the first one's build, then shares it
            cached = self._cache.get(org_id)
            if cached is not None and cached[0] == head and time.monotonic() - cached[1] < self.TTL_S:
                return cached[2]
            data = build()
            self._cache[org_id] = (head, time.monotonic(), data)
            return data

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


shared_snapshots = SharedSnapshots()


def snapshot(ctx: Audience, head: int | None = None) -> dict[str, Any]:
    """The current state an audience's screen shows, as of the log head."""
    if ctx.kind == "console":
        if head is None:
            return _console_snapshot(ctx)
        return shared_snapshots.get(ctx.org_id, head, lambda: _console_snapshot(ctx))
    if ctx.kind == "driver":
        return _driver_snapshot(ctx)
    return _track_snapshot(ctx)


def _today(org_id: int) -> date:
    from apps.accounts.models import Organization

    tz = zoneinfo.ZoneInfo(Organization.objects.values_list("timezone", flat=True).get(pk=org_id))
    return timezone.now().astimezone(tz).date()


def _routes_with_stops(routes: QuerySet) -> list[dict[str, Any]]:
    from apps.dispatch.serializers import RouteDetailSerializer

    return RouteDetailSerializer(routes.select_related("driver", "vehicle"), many=True).data


def _console_snapshot(ctx: Audience) -> dict[str, Any]:
    from apps.dispatch.models import Driver, Route
    from apps.dispatch.serializers import DriverSerializer
    from apps.tracking.selectors import latest_positions

    day = _today(ctx.org_id)
    return {
        "date": day.isoformat(),
        "routes": _routes_with_stops(Route.objects.filter(org_id=ctx.org_id, date=day)),
        "drivers": DriverSerializer(Driver.objects.filter(org_id=ctx.org_id, active=True).select_related("user"),
                                    many=True).data,
        "positions": latest_positions(org_id=ctx.org_id),
    }


def _driver_snapshot(ctx: Audience) -> dict[str, Any]:
    from apps.dispatch.models import Route, RouteStatus

    routes = Route.objects.filter(pk__in=_driver_route_ids(ctx.driver_id or 0)).exclude(status=RouteStatus.DRAFT)
    return {"routes": _routes_with_stops(routes)}


def _track_snapshot(ctx: Audience) -> dict[str, Any]:
    from apps.dispatch.models import Order
    from apps.tracking.customer import tracking_snapshot

    return tracking_snapshot(order=Order.objects.select_related("org").get(pk=ctx.order_id))
