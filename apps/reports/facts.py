"""Report counters computed straight from the dispatch and tracking tables.

The one place that turns stops, orders, routes and location history into counters.
The summary rebuild (summary.py) stores what this returns for a day; the raw
baseline (selectors.py, ``mode="raw"``) sums what it returns for a whole filtered
range. Same code, so the two can only differ if the summary is stale.

Which day an attempt belongs to: its route's ``date``. A stop completed offline on
Monday and synced on Tuesday is Monday's, because its route is; its times are the
device's (the stop services keep ``occurred_at``). A cancellation belongs to the local
day (organization time zone) on which the order was cancelled.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from django.db.models import OuterRef, Subquery

from apps.accounts.models import Organization
from apps.dispatch.models import Order, OrderState, Route, Stop, StopKind, StopOutcome, StopState
from apps.dispatch.optimization.travel import StraightLineProvider, TravelTimeProvider
from apps.dispatch.timing import haversine_m
from apps.tracking.models import LocationPing, PingStatus

from . import kpis, seams

Key = tuple[date, int | None, int | None, str]  # day, hub, driver, source


@dataclass(frozen=True)
class Scope:
    """Which rows: an organization, a range of days, optional hub, driver and source."""

    org: Organization
    date_from: date
    date_to: date
    hub_id: int | None = None
    driver_id: int | None = None
    source: str | None = None


def org_tz(org: Organization) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(org.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_day_bounds(org: Organization, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    tz = org_tz(org)
    return datetime.combine(date_from, time.min, tzinfo=tz), datetime.combine(date_to + timedelta(days=1), time.min,
                                                                              tzinfo=tz)


STOP_FIELDS = (
    "id", "order_id", "route_id", "outcome", "failure_reason", "notes", "arrived_at", "completed_at", "eta",
    "planned_arrival", "route__date", "route__hub_id", "route__driver_id", "order__source",
    "order__window_start", "order__window_end", "order__pod_requirements",
    # Annotated by attempts_queryset: the proof captured (apps/pod) and the ETA current
    # when the driver set off towards the stop (apps/eta). Read through seams.py.
    *seams.POD_FLAGS, "predicted_departure",
)


def attempts_queryset(scope: Scope):
    """Completed delivery stops (the attempts) of the scope, each with the id of its
    order's first attempt (``first_id``): stop ids grow with attempts, because a
    re-attempt is a new stop."""
    first = (Stop.objects.filter(order_id=OuterRef("order_id"), kind=StopKind.DELIVERY, state=StopState.COMPLETED)
             .order_by("id").values("id")[:1])
    qs = Stop.objects.filter(org=scope.org, kind=StopKind.DELIVERY, state=StopState.COMPLETED,
                             route__date__gte=scope.date_from, route__date__lte=scope.date_to)
    if scope.hub_id is not None:
        qs = qs.filter(route__hub_id=scope.hub_id)
    if scope.driver_id is not None:
        qs = qs.filter(route__driver_id=scope.driver_id)
    if scope.source is not None:
        qs = qs.filter(order__source=scope.source)
    return qs.annotate(first_id=Subquery(first), **seams.attempt_annotations())


def cancellations_queryset(scope: Scope):
    start, end = local_day_bounds(scope.org, scope.date_from, scope.date_to)
    qs = Order.objects.filter(org=scope.org, state=OrderState.CANCELLED, completed_at__gte=start, completed_at__lt=end)
    if scope.hub_id is not None:
        qs = qs.filter(hub_id=scope.hub_id)
    if scope.source is not None:
        qs = qs.filter(source=scope.source)
    if scope.driver_id is not None:
        qs = qs.none()  # a cancelled order was never a driver's attempt
    return qs


def attempt_of(row: dict[str, Any]) -> kpis.Attempt:
    return kpis.Attempt(
        succeeded=row["outcome"] == StopOutcome.SUCCEEDED,
        failure_reason=row["failure_reason"] or "",
        first_attempt=row["first_id"] == row["id"],
        arrival=kpis.arrival_time(row["arrived_at"], row["completed_at"]),
        window_start=row["order__window_start"],
        window_end=row["order__window_end"],
        predicted_arrival=seams.stop_predicted_arrival(row),
        pod_required=frozenset(row["order__pod_requirements"] or ()),
        pod_captured=seams.pod_proofs_captured(row),
    )


def stop_counters(scope: Scope) -> tuple[dict[Key, dict[str, int]], list[dict[str, Any]]]:
    """Counters per (day, hub, driver, source), and the attempt rows (for route figures)."""
    out: dict[Key, dict[str, int]] = defaultdict(dict)
    rows = list(attempts_queryset(scope).values(*STOP_FIELDS, "first_id"))
    for row in rows:
        key = (row["route__date"], row["route__hub_id"], row["route__driver_id"], row["order__source"])
        kpis.add(out[key], kpis.attempt_counters(attempt_of(row)))
    tz = org_tz(scope.org)
    for hub_id, source, completed_at in cancellations_queryset(scope).values_list("hub_id", "source", "completed_at"):
        kpis.add(out[(completed_at.astimezone(tz).date(), hub_id, None, source)], {"cancelled": 1})
    return out, rows


# --- routes -------------------------------------------------------------------------


def _planned(route: dict[str, Any], points: list[tuple[float, float]], provider: TravelTimeProvider) -> tuple[int, int]:
    """Metres and seconds of driving along the planned sequence, hub to hub."""
    path = [(route["start_lat"], route["start_lng"]), *points, (route["end_lat"], route["end_lng"])]
    metres = seconds = 0
    for a, b in pairwise(path):
        s, m = provider.leg(a, b)
        seconds += s
        metres += m
    return metres, seconds


def track_totals(fixes: list[tuple[datetime, float, float]]) -> tuple[int, int] | None:
    """Metres and moving seconds along a driver's fixes (in device-time order); None
    with fewer than two fixes."""
    if len(fixes) < 2:
        return None
    metres = 0.0
    moving = 0.0
    for (t1, lat1, lng1), (t2, lat2, lng2) in pairwise(fixes):
        d = haversine_m(lat1, lng1, lat2, lng2)
        dt = (t2 - t1).total_seconds()
        metres += d
        if 0 < dt <= kpis.MAX_FIX_GAP_S and d / dt >= kpis.MOVING_MPS:
            moving += dt
    return round(metres), round(moving)


def route_rows(scope: Scope, attempts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per route with at least one attempt in ``attempts``: the route figures.

    Planned figures always use the straight-line provider, not ``default_provider()``:
    configuring a road-network provider must not change last year's plans under us."""
    provider = StraightLineProvider()
    per_route: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in attempts:
        per_route[row["route_id"]].append(row)
    if not per_route:
        return []
    routes = {r["id"]: r for r in Route.objects.filter(pk__in=per_route).values(
        "id", "date", "hub_id", "driver_id", "start_lat", "start_lng", "end_lat", "end_lng", "started_at", "completed_at")}
    points: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for route_id, lat, lng in (Stop.objects.filter(route_id__in=per_route).exclude(state=StopState.CANCELLED)
                               .order_by("route_id", "sequence", "id").values_list("route_id", "order__lat", "order__lng")):
        if lat is not None and lng is not None:
            points[route_id].append((lat, lng))

    spans: dict[int, tuple[datetime, datetime, datetime]] = {}
    for route_id, rows in per_route.items():
        route = routes[route_id]
        first = min(kpis.arrival_time(r["arrived_at"], r["completed_at"]) for r in rows)
        last = max(r["completed_at"] for r in rows)
        # Device times win over the server's: a route worked offline is started and
        # finished on the server when it syncs, later than the driver really worked.
        start = min(t for t in (route["started_at"], first) if t is not None)
        end = max(t for t in (route["completed_at"], last) if t is not None)
        spans[route_id] = (start, last, end)

    fixes: dict[int, list[tuple[datetime, float, float]]] = defaultdict(list)
    drivers = {routes[r]["driver_id"] for r in per_route if routes[r]["driver_id"] is not None}
    if drivers:
        lo = min(s[0] for s in spans.values())
        hi = max(s[2] for s in spans.values())
        for driver_id, at, lat, lng in (LocationPing.objects.filter(
                org=scope.org, driver_id__in=drivers, status=PingStatus.SHOWN, device_time__gte=lo, device_time__lte=hi)
                .order_by("driver_id", "device_time").values_list("driver_id", "device_time", "lat", "lng")):
            fixes[driver_id].append((at, lat, lng))

    out = []
    for route_id, rows in per_route.items():
        route = routes[route_id]
        start, last, end = spans[route_id]
        planned_m, planned_s = _planned(route, points[route_id], provider)
        track = track_totals([f for f in fixes.get(route["driver_id"], ()) if start <= f[0] <= end])
        work = round((last - start).total_seconds())
        out.append({
            "route_id": route_id, "day": route["date"], "hub_id": route["hub_id"], "driver_id": route["driver_id"],
            "attempts": len(rows), "work_s": work if work > 0 else None,
            "planned_m": planned_m, "planned_s": planned_s,
            "actual_m": track[0] if track else None, "actual_s": track[1] if track else None,
        })
    return out


def route_counters(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    c: dict[str, int] = dict.fromkeys(kpis.ROUTE_COUNTERS, 0)
    for r in rows:
        c["routes"] += 1
        c["route_attempts"] += r["attempts"]
        c["planned_m"] += r["planned_m"]
        c["planned_s"] += r["planned_s"]
        if r["work_s"]:
            c["work_s"] += r["work_s"]
            c["worked_routes"] += 1
            c["worked_attempts"] += r["attempts"]
        if r["actual_m"] is not None:
            c["tracked_routes"] += 1
            c["tracked_planned_m"] += r["planned_m"]
            c["tracked_planned_s"] += r["planned_s"]
            c["actual_m"] += r["actual_m"]
            c["actual_s"] += r["actual_s"] or 0
    return c
