"""A route's remaining work as the ETA engine needs it, loaded once and reused for
every ping until the route changes.

Loading costs a handful of queries (route and stops with their orders, the
organization's tracking and notification settings, the prediction rows) and one
travel-time matrix over the remaining stops; a ping then costs one ``leg`` question at
most (see ``RoutePlan.to_first``) and arithmetic.

Whether a cached plan still describes its route is asked for all due plans at once
(``route_stamps``): one query returns, for each driver, the route the engine follows and
a stamp of everything a plan is built from (the route row, its stops and their orders).
A plan whose stamp is unchanged is kept; only the organization's settings are read
again (``rules_refresh``, two queries for every organization of the batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Max

from apps.dispatch.models import Route, RouteStatus, Stop, StopState
from apps.dispatch.optimization.travel import TravelTimeProvider, _haversine, default_provider

from .engine import StopSpec, late, predict

ACTIVE_STATUSES = (RouteStatus.PUBLISHED, RouteStatus.IN_PROGRESS)


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


@dataclass(slots=True)
class Position:
    lat: float
    lng: float
    at: float  # device time


@dataclass(slots=True)
class Visibility:
    """The organization's rule for showing the driver on a tracking page."""

    within_stops: int = 3
    within_minutes: int = 15

    def driver_visible(self, *, stops_away: int, eta: float, now: float) -> bool:
        return stops_away <= self.within_stops or eta - now <= self.within_minutes * 60


@dataclass(slots=True)
class RoutePlan:
    route_id: int
    org_id: int
    driver_id: int | None
    driver_first_name: str
    status: str
    planned_start: float | None
    # Where and when the driver was last known to be if no live position is usable:
    # the last visited stop (or the depot) and the time the visit ended.
    fallback_origin: tuple[float, float]
    fallback_clock: float
    stops: list[StopSpec]
    legs: list[float]
    visibility: Visibility
    provider: TravelTimeProvider
    loaded_at: float = field(default_factory=time.monotonic)
    # The last ETAs written and pushed, by stop id: a ping that moves an ETA by less
    # than ETA_MIN_CHANGE_S writes nothing.
    shown: dict[int, float] = field(default_factory=dict)
    # What each tracking page was last sent (window, stops away, late risk), by stop id:
    # a page hears again only when what it shows changes, or while it may see the driver.
    track_shown: dict[int, tuple] = field(default_factory=dict)
    # Mirrors of StopPrediction, loaded with the plan, so a ping needs no reads.
    late_open: set[int] = field(default_factory=set)
    departure_recorded: set[int] = field(default_factory=set)
    first_recorded: set[int] = field(default_factory=set)
    first_etas: dict[int, float] = field(default_factory=dict)
    # The organization's notification settings (arriving-soon stops, ETA-change threshold).
    notify: Any = None
    # What the plan was built from (``route_stamps``); None for a plan whose stamp is
    # unknown (adopted after a change in this process), which the next check reloads.
    stamp: tuple | None = None
    # The last provider answer for the first leg: (stop id, seconds, straight-line metres, monotonic time).
    _first_leg: tuple[int, float, float, float] | None = None
    _away: list[int] | None = None

    def clock_start(self, now: float) -> float:
        """A route not started yet does not start before its planned start."""
        if self.status == RouteStatus.PUBLISHED and self.planned_start is not None and self.planned_start > now:
            return self.planned_start
        return now

    def origin(self, position: Position | None, now: float) -> tuple[tuple[float, float], float]:
        """Where the driver is and from when to count: the live position if it is recent
        enough, else the last visit (a phone that stopped reporting does not freeze the ETAs)."""
        if position is not None and now - position.at <= settings.ETA_POSITION_MAX_AGE_S:
            return (position.lat, position.lng), self.clock_start(now)
        return self.fallback_origin, max(self.clock_start(now), self.fallback_clock)

    def to_first(self, origin: tuple[float, float]) -> float:
        """Travel time from ``origin`` to the first remaining stop with coordinates.

        The provider is asked at most once per ETA_LEG_REFRESH_S per route (a road-network
        provider is a network call); in between, its answer is scaled by the
        straight-line distance left, which follows a driver closing in closely. A driver
        who is farther from the stop than at the last answer (off route, or heading the
        wrong way) gets a fresh answer: scaling would guess their detour.
        """
        target = next((s for s in self.stops if s.lat is not None and s.lng is not None), None)
        if target is None:
            return 0.0
        straight = _haversine(origin, (target.lat, target.lng))
        cached, mono = self._first_leg, time.monotonic()
        if (cached is not None and cached[0] == target.stop_id and mono - cached[3] < settings.ETA_LEG_REFRESH_S
                and straight <= cached[2]):
            return cached[1] * straight / cached[2] if cached[2] > 0 else 0.0
        seconds, _ = self.provider.leg(origin, (target.lat, target.lng))
        self._first_leg = (target.stop_id, float(seconds), straight, mono)
        return float(seconds)

    def predict(self, *, position: Position | None, now: float) -> list[float]:
        origin, start = self.origin(position, now)
        return predict(now=start, to_first_s=self.to_first(origin), legs=self.legs, stops=self.stops)

    def late(self, etas: list[float]) -> list[bool]:
        return late(etas, self.stops, margin_s=settings.ETA_LATE_MARGIN_S)

    def stops_away(self) -> list[int]:
        """For each remaining stop, how many stops the driver makes before reaching it
        (fixed for the plan's life: a visit makes a new plan)."""
        if self._away is None:
            ahead = 0
            out = []
            for stop in self.stops:
                out.append(ahead)
                if stop.arrived_at is None:
                    ahead += 1
            self._away = out
        return self._away

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.loaded_at > settings.ETA_PLAN_TTL_S


def _legs(provider: TravelTimeProvider, stops: list[StopSpec]) -> list[float]:
    """Travel time between consecutive stops; a stop without coordinates is taken to be
    where the previous one was (its low geocode confidence is flagged elsewhere)."""
    located = [i for i, s in enumerate(stops) if s.lat is not None and s.lng is not None]
    legs = [0.0] * len(stops)
    if len(located) < 2:
        return legs
    matrix = provider.matrix([(stops[i].lat, stops[i].lng) for i in located])
    for k in range(1, len(located)):
        legs[located[k]] = float(matrix.seconds[k - 1][k])
    return legs


def plan_load(*, route: Route | None = None, route_id: int | None = None,
              provider: TravelTimeProvider | None = None, previous: RoutePlan | None = None) -> RoutePlan | None:
    """The plan of an active (published or in-progress) route; None for any other.

    ``previous`` (the plan being reloaded) lends its legs when the remaining stops are
    the same ones at the same places: a periodic reload then costs the queries, not a
    travel-time matrix."""
    from apps.tracking.selectors import tracking_settings

    if route is None:
        route = Route.objects.select_related("driver").filter(pk=route_id, status__in=ACTIVE_STATUSES).first()
    if route is None or route.status not in ACTIVE_STATUSES:
        return None
    rows = list(
        Stop.objects.filter(route_id=route.pk).exclude(state=StopState.CANCELLED)
        .order_by("sequence", "id")
        .values_list("pk", "order_id", "state", "arrived_at", "completed_at", "order__lat", "order__lng",
                     "order__service_time_s", "order__window_start", "order__window_end", "eta")
    )
    origin, clock = (route.start_lat, route.start_lng), ts(route.started_at) or 0.0
    remaining: list[StopSpec] = []
    shown: dict[int, float] = {}
    for pk, order_id, state, arrived_at, completed_at, lat, lng, service_s, ws, we, eta in rows:
        if state == StopState.COMPLETED:
            if lat is not None and lng is not None:
                origin = (lat, lng)
            clock = max(clock, ts(completed_at) or ts(arrived_at) or 0.0)
            continue
        remaining.append(StopSpec(pk, order_id, lat, lng, service_s, ts(ws), ts(we),
                                  ts(arrived_at) if state == StopState.ARRIVED else None))
        if eta is not None:
            shown[pk] = eta.timestamp()
    provider = provider or default_provider()
    legs = None
    if previous is not None and previous.route_id == route.pk:
        places = [(s.stop_id, s.lat, s.lng) for s in remaining]
        if places == [(s.stop_id, s.lat, s.lng) for s in previous.stops]:
            legs = previous.legs
    rules = tracking_settings(org_id=route.org_id)
    from apps.notifications.services import notification_settings

    notify = notification_settings(org_id=route.org_id)
    driver = route.driver
    return RoutePlan(
        route_id=route.pk, org_id=route.org_id, driver_id=route.driver_id,
        driver_first_name=driver.first_name if driver is not None else "", status=route.status,
        planned_start=ts(route.planned_start), fallback_origin=origin, fallback_clock=clock, stops=remaining,
        legs=legs if legs is not None else _legs(provider, remaining), provider=provider,
        visibility=Visibility(rules.driver_visible_within_stops, rules.driver_visible_within_minutes), shown=shown,
        notify=notify,
    )


def driver_position(driver_id: int | None) -> Position | None:
    from apps.tracking.models import DriverPosition

    if driver_id is None:
        return None
    row = (DriverPosition.objects.filter(driver_id=driver_id, device_time__isnull=False)
           .values_list("lat", "lng", "device_time").first())
    return Position(row[0], row[1], row[2].timestamp()) if row else None


Stamp = tuple


def route_stamps(driver_ids: list[int]) -> dict[int, tuple[int, Stamp]]:
    """For each driver with an active route: the route the ETA engine follows (the one
    under way, else the earliest published) and its stamp, in one query for all drivers.

    The stamp changes whenever something a plan is built from changes: the route row
    (status, driver, version, ``updated_at``, which ``eta_route_refresh`` also moves on
    every change to a dispatched route), its stops (count, latest ``updated_at``: a visit,
    a cancellation, a new sequence) and their orders (latest ``updated_at``: an address
    or a window edited). Read before the plan it validates: a change committing in
    between leaves a newer stamp for the next check to see."""
    rows = (Route.objects.filter(driver_id__in=driver_ids, status__in=ACTIVE_STATUSES)
            .annotate(stops_n=Count("stops"), stops_at=Max("stops__updated_at"),
                      orders_at=Max("stops__order__updated_at"))
            .order_by()
            .values_list("pk", "driver_id", "status", "date", "version", "updated_at", "stops_n", "stops_at",
                         "orders_at"))
    chosen: dict[int, tuple[tuple, int, Stamp]] = {}
    for pk, driver_id, status, day, *stamp in rows:
        rank = (status != RouteStatus.IN_PROGRESS, day, pk)
        current = chosen.get(driver_id)
        if current is None or rank < current[0]:
            chosen[driver_id] = (rank, pk, (status, *stamp))
    return {driver_id: (pk, stamp) for driver_id, (_, pk, stamp) in chosen.items()}


def rules_refresh(plans: list[RoutePlan]) -> None:
    """Read the organizations' tracking and notification settings again for kept plans
    (two queries whatever the number of plans): a setting changed in the console applies
    from the next check, as it would with a reload."""
    from apps.notifications.models import NotificationSettings
    from apps.tracking.models import TrackingSettings

    orgs = {plan.org_id for plan in plans}
    tracking = {row.org_id: row for row in TrackingSettings.objects.filter(org_id__in=orgs)}
    notify = {row.org_id: row for row in NotificationSettings.objects.filter(org_id__in=orgs)}
    for plan in plans:
        rules = tracking.get(plan.org_id) or TrackingSettings(org_id=plan.org_id)
        plan.visibility = Visibility(rules.driver_visible_within_stops, rules.driver_visible_within_minutes)
        plan.notify = notify.get(plan.org_id) or NotificationSettings(org_id=plan.org_id)
