"""Exceptions during the day and the replans they trigger.

``exception_report`` records what went wrong and queues a replan of the routes it
affects; exceptions arriving while a replan for the same hub and day is still
queued join it (one replan, not a pile of racing ones). ``replan_execute`` (the
job) re-optimizes the open stops of those routes from where each vehicle is now,
warm-started from the current plan, and computes the before/after diff; it then
applies it (organization policy ``auto_apply``) or proposes it to the dispatcher.
``replan_apply`` changes the routes through ``route_set_stops`` in one
transaction: the routes' versions go up and each driver receives the reroute; if
anything changed underneath, nothing is applied and an alert is raised.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from apps.accounts.actor import Actor, system_actor
from apps.common.exceptions import BusinessRuleViolation, ValidationFailed
from apps.dispatch.models import Driver, Order, OrderOutcome, OrderState, Priority, Route, RouteStatus, Stop, StopState
from apps.dispatch.optimization.problem import Problem
from apps.dispatch.optimization.solve import solve
from apps.dispatch.services.orders import order_cancel, order_reschedule
from apps.dispatch.services.reroute import routes_reroute
from apps.events import types as ev
from apps.events.services import NewEvent, event_record, events_record

from .diff import replan_diff
from .inputs import ExceptionIn
from .models import (
    ExceptionKind,
    ExceptionStatus,
    FailedDeliveryPolicy,
    OpsException,
    PinKind,
    PlanKind,
    PlanRun,
    PlanStatus,
    StopPin,
)
from .problem_input import (
    PlanningInput,
    Position,
    plan_to_json,
    replan_input,
    route_stops_loaded,
    stop_id,
    vehicle_id,
)
from .selectors import policy_of
from .services import _enqueue, _Reporter, plan_claim, plan_payload, plan_recover_stale

log = logging.getLogger(__name__)

K = ExceptionKind
# Exceptions that free or need a vehicle's time re-plan every active route of the
# hub and day; the others re-sequence the one route they touch.
FLEET_KINDS = frozenset({K.VEHICLE_BREAKDOWN, K.DRIVER_UNAVAILABLE, K.URGENT_ORDER, K.LATE_RISK})
ACTIVE = (RouteStatus.PUBLISHED, RouteStatus.IN_PROGRESS)
# A position older than this is not where the driver is now.
FRESH_POSITION_S = 10 * 60
# A replan whose job overran its limit by this factor is treated as timed out.
TIMEOUT_FACTOR = 3.0


def exception_payload(exc: OpsException, **extra: Any) -> dict[str, Any]:
    return {"exception_id": exc.pk, "kind": exc.kind, "status": exc.status, "route_id": exc.route_id,
            "driver_id": exc.driver_id, "order_id": exc.order_id, "stop_id": exc.stop_id,
            "replan_id": exc.replan_id, **extra}


def _get(actor: Actor, model, pk: int | None, field: str):
    if pk is None:
        return None
    obj = model.objects.filter(org=actor.org, pk=pk).first()
    if obj is None:
        raise ValidationFailed({field: [f"No such {model._meta.verbose_name}."]})
    return obj


def _active_route_of(driver: Driver, today) -> Route | None:
    return (Route.objects.filter(org=driver.org, driver=driver, date=today, status__in=ACTIVE)
            .order_by("-status", "id").first())


@transaction.atomic
def exception_report(*, actor: Actor, data: ExceptionIn, now: datetime | None = None) -> OpsException:
    """Record an exception and queue (or join) the replan of the routes it affects."""
    now = now or timezone.now()
    plan_recover_stale()
    route = _get(actor, Route, data.route, "route")
    driver = _get(actor, Driver, data.driver, "driver")
    order = _get(actor, Order, data.order, "order")
    stop = _get(actor, Stop, data.stop, "stop")
    kind = data.kind
    if stop is not None:
        order = order or stop.order
        route = route or stop.route
    if kind in (K.VEHICLE_BREAKDOWN, K.DRIVER_UNAVAILABLE, K.LATE_RISK):
        if route is None and driver is not None:
            route = _active_route_of(driver, timezone.localdate(now))
        if route is None:
            raise ValidationFailed({"route": ["Name the route (or a driver who is on one today)."]})
        driver = driver or route.driver
    if kind in (K.URGENT_ORDER, K.ORDER_CANCELLED, K.ORDER_CHANGED, K.FAILED_DELIVERY) and order is None:
        raise ValidationFailed({"order": ["Name the order (or its stop)."]})
    if kind == K.FAILED_DELIVERY:
        failed = (Stop.objects.filter(order=order, state=StopState.COMPLETED, outcome="failed")
                  .select_related("route").order_by("-completed_at", "-id").first())
        if failed is None:
            raise BusinessRuleViolation("The order has no failed delivery to handle.", code="no_failed_delivery")
        stop, route = stop or failed, route or failed.route
    if kind in (K.ORDER_CANCELLED, K.ORDER_CHANGED) and route is None:
        route = Route.objects.filter(stops__order=order, stops__state=StopState.PENDING, status__in=ACTIVE).first()
    if kind == K.URGENT_ORDER:
        if order.state != OrderState.CREATED:
            raise BusinessRuleViolation("Only an order that is not on a route yet can be added as urgent.",
                                        code="order_not_plannable", current_state=order.state)
        if order.priority != Priority.URGENT:
            order.priority = Priority.URGENT
            order.save(update_fields=["priority", "updated_at"])
    if kind == K.URGENT_ORDER and route is None:
        route = (Route.objects.filter(org=actor.org, status__in=ACTIVE, date=timezone.localdate(now))
                 .filter(hub=order.hub) if order.hub_id else
                 Route.objects.filter(org=actor.org, status__in=ACTIVE, date=timezone.localdate(now))).first()
        if route is None:
            raise BusinessRuleViolation("No route is on the road today to take the order.", code="no_active_route")

    exc = OpsException.objects.create(org=actor.org, kind=kind, route=route, driver=driver, order=order, stop=stop,
                                      details={"notes": data.notes} if data.notes else {}, reported_by=actor.label)
    events = [NewEvent(ev.EXCEPTION_REPORTED, "exception", exc.pk, exception_payload(exc))]
    events_record(org=actor.org, actor=actor.label, events=events)

    policy = policy_of(org=actor.org)
    if kind == K.ORDER_CANCELLED and order.state != OrderState.CANCELLED:
        order_cancel(actor=actor, order=order, reason=data.notes or "cancelled during the day")
    if kind == K.FAILED_DELIVERY and order.state == OrderState.COMPLETED and order.outcome == OrderOutcome.FAILED:
        order_reschedule(actor=actor, order=order)
        open_window = order.window_end is None or order.window_end > now
        if policy.failed_delivery != FailedDeliveryPolicy.REATTEMPT or not open_window:
            # Back to the hub: the order waits in the pool for another day; nothing to re-plan.
            exc.status = ExceptionStatus.APPLIED
            exc.details = {**exc.details, "outcome": "rescheduled"}
            exc.save(update_fields=["status", "details", "updated_at"])
            return exc
        exc.details = {**exc.details, "outcome": "reattempt"}
        exc.save(update_fields=["details", "updated_at"])
    if route is None or route.status not in ACTIVE:
        exc.status = ExceptionStatus.DISMISSED
        exc.details = {**exc.details, "outcome": "no active route to re-plan"}
        exc.save(update_fields=["status", "details", "updated_at"])
        return exc
    route_ids = {route.pk}
    if kind in FLEET_KINDS:
        route_ids |= set(Route.objects.filter(org=actor.org, hub=route.hub_id, date=route.date, status__in=ACTIVE)
                         .values_list("pk", flat=True))
    _join_or_queue(actor, exc, route, sorted(route_ids), policy)
    return exc


def _join_or_queue(actor: Actor, exc: OpsException, route: Route, route_ids: list[int], policy) -> PlanRun:
    """Exceptions of the same hub and day share the replan that has not started yet."""
    plan = (PlanRun.objects.select_for_update()
            .filter(org=actor.org, kind=PlanKind.REPLAN, status=PlanStatus.QUEUED, hub=route.hub_id, date=route.date)
            .order_by("id").first())
    if plan is None:
        plan = PlanRun.objects.create(org=actor.org, hub_id=route.hub_id, date=route.date, kind=PlanKind.REPLAN,
                                      time_limit_s=policy.replan_time_limit_s, route_ids=route_ids,
                                      requested_by=actor.label, stage="queued")
        event_record(org=actor.org, actor=actor.label, type=ev.PLAN_REQUESTED, subject_type="plan", subject_id=plan.pk,
                     payload=plan_payload(plan, route_ids=route_ids))
        _enqueue(plan, delay_s=policy.coalesce_s)
    else:
        plan.route_ids = sorted(set(plan.route_ids) | set(route_ids))
        plan.save(update_fields=["route_ids", "updated_at"])
    exc.replan = plan
    exc.save(update_fields=["replan", "updated_at"])
    return plan


def _positions(routes: list[Route], now: datetime) -> dict[int, Position]:
    """Where each driver is and from when they are free: an arrived stop holds them
    until its service ends; a fresh GPS fix beats the last visited stop."""
    from apps.tracking.models import DriverPosition

    out: dict[int, Position] = {}
    fixes = {p.driver_id: p for p in DriverPosition.objects.filter(driver_id__in=[r.driver_id for r in routes if r.driver_id])}
    for route in routes:
        if route.driver_id is None:
            continue
        stops = route_stops_loaded(route)
        arrived = [s for s in stops if s.state == StopState.ARRIVED]
        if arrived:
            s = arrived[-1]
            free = max(now, (s.arrived_at or now) + timedelta(seconds=s.order.service_time_s))
            out[route.driver_id] = Position((s.order.lat, s.order.lng), free)
            continue
        fix = fixes.get(route.driver_id)
        if fix and fix.lat is not None and fix.last_ping_at and (now - fix.last_ping_at).total_seconds() < FRESH_POSITION_S:
            out[route.driver_id] = Position((fix.lat, fix.lng), now)
            continue
        visited = [s for s in stops if s.state == StopState.COMPLETED and s.order.lat is not None]
        if visited:
            out[route.driver_id] = Position((visited[-1].order.lat, visited[-1].order.lng), now)
        else:
            out[route.driver_id] = Position((route.start_lat, route.start_lng), now)
    return out


def _gather(plan: PlanRun, now: datetime) -> tuple[PlanningInput, Problem, dict[str, int]]:
    exceptions = list(plan.exceptions.all())
    # Each route's stops and orders are read once, for the positions and the problem.
    routes = list(Route.objects.filter(pk__in=plan.route_ids, status__in=ACTIVE)
                  .select_related("driver", "vehicle", "hub").order_by("id")
                  .prefetch_related(Prefetch("stops", queryset=Stop.objects.select_related("order")
                                             .order_by("sequence", "id"))))
    unavailable = {e.driver_id or (e.route.driver_id if e.route else None) for e in exceptions
                   if e.kind in (K.VEHICLE_BREAKDOWN, K.DRIVER_UNAVAILABLE)} - {None}
    extra_ids = {e.order_id for e in exceptions if e.kind in (K.URGENT_ORDER, K.FAILED_DELIVERY) and e.order_id}
    extra = list(Order.objects.filter(pk__in=extra_ids, state=OrderState.CREATED))
    urgent = {e.order_id for e in exceptions if e.kind == K.URGENT_ORDER}
    pinned = StopPin.objects.filter(stop__route__in=routes, stop__state=StopState.PENDING).select_related("stop")
    pins = {stop_id(p.stop.order_id): p.kind for p in pinned}
    positions = _positions(routes, now)
    pi = replan_input(hub=plan.hub, day=plan.date, routes=routes, positions=positions, unavailable=unavailable,
                      extra_orders=extra, urgent=urgent, pins=pins)
    # "Before": the current sequences, every vehicle (also the one that broke down)
    # timed from where it is now, on the same matrix.
    versions = {vehicle_id(r.driver_id): r.version for r in routes if r.driver_id}
    return pi, _before_problem(pi, routes, positions), versions


def _before_problem(pi: PlanningInput, routes: list[Route], positions: dict[int, Position]) -> Problem:
    from apps.dispatch.optimization.problem import Vehicle, Window

    from .problem_input import _shift, capacity

    problem = pi.problem
    have = {v.id for v in problem.vehicles}
    extra = []
    for route in routes:
        vid = vehicle_id(route.driver_id) if route.driver_id else None
        if vid is None or vid in have:
            continue
        # The broken-down vehicle: its old plan, timed from where it stopped.
        pos = positions.get(route.driver_id)
        location = min(range(len(pi.points)), key=lambda i: (pi.points[i][0] - pos.point[0]) ** 2
                       + (pi.points[i][1] - pos.point[1]) ** 2) if pos else 0
        shift = _shift(route.driver, pi.epoch)
        free = max(shift.start, pi.seconds(pos.free_at)) if pos else shift.start
        extra.append(Vehicle(id=vid, start=location, end=0, shift=Window(free, max(free, shift.end)),
                             capacity=capacity(route.vehicle) if route.vehicle else (0, 0, 0)))
    return replace(problem, vehicles=(*problem.vehicles, *extra), locks=())


def _fail(plan: PlanRun, message: str) -> PlanRun:
    """Leave the routes as they are and raise the alert on the console's feed."""
    with transaction.atomic():
        PlanRun.objects.filter(pk=plan.pk).update(status=PlanStatus.FAILED, stage="failed", error=message[:2000],
                                                  finished_at=timezone.now())
        plan.status, plan.stage, plan.error = PlanStatus.FAILED, "failed", message
        OpsException.objects.filter(replan=plan).update(status=ExceptionStatus.FAILED, updated_at=timezone.now())
        event_record(org=plan.org, actor="system", type=ev.REPLAN_FAILED, subject_type="plan", subject_id=plan.pk,
                     payload=plan_payload(plan, error=message[:200], route_ids=plan.route_ids))
    return plan


def replan_execute(*, plan_id: int, now: datetime | None = None) -> PlanRun | None:
    """The replan job. Never raises: a failure leaves the plan untouched and alerts.

    With auto-apply, the drivers get the first complete plan at once: the current
    plan repaired, the orphaned stops inserted at their cheapest feasible place
    (milliseconds). The search then improves on it for the policy's time limit, and
    only a plan meaningfully better (``IMPROVE_MIN``, or serving more stops) becomes
    a second, smaller change: drivers are not rerouted twice for a few metres.
    Without auto-apply the dispatcher reviews the searched plan, as before.
    """
    # One replan at a time per hub and day: a second one waits for the first, so
    # two never race to move the same stops.
    queued = PlanRun.objects.filter(pk=plan_id, status=PlanStatus.QUEUED).first()
    if queued is not None and PlanRun.objects.filter(
            org=queued.org_id, kind=PlanKind.REPLAN, status=PlanStatus.RUNNING, hub=queued.hub_id,
            date=queued.date).exists():
        with transaction.atomic():
            _enqueue(queued, delay_s=1.0)
        return queued
    plan = plan_claim(plan_id=plan_id)
    if plan is None:
        return None
    started = time.perf_counter()
    now = now or timezone.now()
    report = _Reporter(plan)
    auto = policy_of(org=plan.org).auto_apply
    try:
        pi, before_problem, versions = _gather(plan, now)
        report.stage("solving", stops=len(pi.problem.stops), vehicles=len(pi.problem.vehicles),
                     time_left_s=plan.time_limit_s)
        warm = {vid: seq for vid, seq in pi.current.items() if vid in pi.drivers}
        fast = solve(pi.problem, engine="insertion", warm_start=warm) if auto else None
        if fast is not None and not _complete(fast):
            # A stop fits nowhere as the routes stand: a short search that walks from
            # the inserted plan makes room, moving as little as it can.
            fast = solve(pi.problem, time_limit_s=FIRST_PLAN_SEARCH_S, warm_start=warm, search_from="warm")
        if fast is not None and _complete(fast):
            result = fast  # the drivers have it before the long search starts
        else:
            fast = None
            result = solve(pi.problem, time_limit_s=plan.time_limit_s, warm_start=warm, on_progress=report)
        draft, diff = _draft_and_diff(pi, before_problem, result, versions)
    except Exception as exc:  # never leave a half-done replan: the current plan stands
        log.exception("replan %s failed", plan_id)
        return _fail(plan, f"The replan failed: {exc}")
    elapsed = time.perf_counter() - started
    if elapsed > plan.time_limit_s * TIMEOUT_FACTOR + 5:
        return _fail(plan, f"The replan timed out ({elapsed:.1f} s); the current plan stands.")
    _propose(plan, draft, diff, result)
    if not auto:
        return plan
    try:
        plan = replan_apply(actor=system_actor(plan.org), plan=plan)
    except Exception as exc:
        return _fail(plan, f"The replan could not be applied: {exc}")
    if fast is not None:
        _improve(plan, pi, before_problem, fast)
    return plan


# The short search for a first plan when insertion leaves a stop without room.
FIRST_PLAN_SEARCH_S = 0.2


def _complete(plan) -> bool:
    """Everything a vehicle could serve is served (what no vehicle can is a fact, not a plan's fault)."""
    return all(u.code != "no_room" for u in plan.unassigned)


# A searched plan replaces an applied one only if it saves at least this share of
# its cost (or serves more stops): below it, a second reroute costs the drivers more
# attention than it saves them driving.
IMPROVE_MIN = 0.01


def _draft_and_diff(pi: PlanningInput, before_problem: Problem, result, versions: dict[str, int]):
    draft = plan_to_json(pi, result)
    after = {r.vehicle: list(r.stop_ids) for r in result.routes}
    diff = replan_diff(pi, before_problem, after, draft["unassigned"])
    diff["versions"] = versions
    return draft, diff


def _propose(plan: PlanRun, draft: dict, diff: dict, result) -> None:
    with transaction.atomic():
        plan.status, plan.stage, plan.result, plan.diff = PlanStatus.READY, "done", draft, diff
        plan.finished_at = timezone.now()
        plan.progress = {**plan.progress, "time_left_s": 0, "best_cost": result.cost, "engine": result.engine}
        plan.save(update_fields=["status", "stage", "result", "diff", "finished_at", "progress", "updated_at"])
        OpsException.objects.filter(replan=plan).update(status=ExceptionStatus.PROPOSED, updated_at=timezone.now())
        event_record(org=plan.org, actor="system", type=ev.REPLAN_PROPOSED, subject_type="plan", subject_id=plan.pk,
                     payload=plan_payload(plan, route_ids=plan.route_ids, moved=len(diff["moved"]),
                                          before=diff["before"], after=diff["after"]))


def _improve(applied: PlanRun, pi: PlanningInput, before_problem: Problem, fast) -> PlanRun | None:
    """Search from the applied first plan; apply a meaningfully better one as a follow-up
    replan of the same routes. It is the same organization's auto-apply decision, so it
    needs no dispatcher; if a route changed meanwhile, the applied plan simply stands."""
    try:
        current = {vid: [] for vid in pi.current} | {r.vehicle: list(r.stop_ids) for r in fast.routes}
        # No progress reports: the applied plan's row is done, and the console shows it.
        result = solve(pi.problem, time_limit_s=applied.time_limit_s, warm_start=current)
        served, served_before = (sum(len(r.visits) for r in p.routes) for p in (result, fast))
        if served < served_before or (served == served_before and result.cost > fast.cost * (1 - IMPROVE_MIN)):
            return None
        routes = Route.objects.filter(pk__in=[r.pk for r in pi.routes.values()])
        versions = {vehicle_id(r.driver_id): r.version for r in routes if r.driver_id}
        draft, diff = _draft_and_diff(replace(pi, current=current), before_problem, result, versions)
        diff["improves"] = applied.pk
    except Exception:  # the applied plan stands; an improvement is a bonus
        log.exception("improving replan %s failed", applied.pk)
        return None
    follow = PlanRun.objects.create(
        org=applied.org, hub_id=applied.hub_id, date=applied.date, kind=PlanKind.REPLAN, status=PlanStatus.RUNNING,
        time_limit_s=applied.time_limit_s, route_ids=applied.route_ids, requested_by="system", stage="solving",
        started_at=applied.finished_at)
    _propose(follow, draft, diff, result)
    try:
        return replan_apply(actor=system_actor(applied.org), plan=follow)
    except Exception as exc:  # a driver moved on meanwhile (a stop done, a version bumped)
        log.info("improvement %s of replan %s not applied: %s", follow.pk, applied.pk, exc)
        PlanRun.objects.filter(pk=follow.pk).update(status=PlanStatus.DISCARDED, error=str(exc)[:2000],
                                                    updated_at=timezone.now())
        return None


@transaction.atomic
def replan_apply(*, actor: Actor, plan: PlanRun) -> PlanRun:
    """Apply a proposed replan to the routes, all or nothing.

    One pass (``routes_reroute``): stops change route and sequence in bulk, each
    changed route's version goes up and its driver gets one ``route.updated`` with
    the new stop list. Each route's version is checked against the one the replan
    saw, so a stop list that changed underneath (a dispatcher's edit) aborts the
    whole apply.
    """
    from apps.common.exceptions import Conflict

    plan = PlanRun.objects.select_for_update().get(pk=plan.pk, org=actor.org)
    if plan.kind != PlanKind.REPLAN:
        raise Conflict("A day plan is published, not applied.", code="plan_kind", kind=plan.kind)
    if plan.status != PlanStatus.READY:
        raise Conflict(f"Only a proposed replan can be applied; this one is {plan.status}.", code="plan_not_ready",
                       current_state=plan.status)
    diff = plan.diff
    versions = diff.get("versions", {})
    specs = [r for r in diff["routes"] if r["route_id"]]
    drivers = dict(Route.objects.filter(org=actor.org, pk__in=[s["route_id"] for s in specs])
                   .values_list("pk", "driver_id"))
    expected = {s["route_id"]: versions.get(vehicle_id(drivers[s["route_id"]])) if drivers.get(s["route_id"]) else None
                for s in specs}
    changed = routes_reroute(actor=actor, sequences={s["route_id"]: s["after"] for s in specs},
                             expected_versions=expected, reason="replan")
    plan.status, plan.published_at = PlanStatus.PUBLISHED, timezone.now()
    plan.save(update_fields=["status", "published_at", "updated_at"])
    OpsException.objects.filter(replan=plan).update(status=ExceptionStatus.APPLIED, updated_at=timezone.now())
    events_record(org=actor.org, actor=actor.label, events=[NewEvent(ev.REPLAN_APPLIED, "plan", plan.pk, plan_payload(
        plan, route_ids=[r.pk for r in changed], versions={str(r.pk): r.version for r in changed},
        moved=len(diff["moved"])))])
    return plan


@transaction.atomic
def stop_pin_set(*, actor: Actor, stop: Stop, kind: str) -> StopPin | None:
    """Pin a stop to its driver (or its place in the sequence), or unpin it (kind "none")."""
    stop = Stop.objects.select_for_update().get(pk=stop.pk, org=actor.org)
    if kind == "none":
        StopPin.objects.filter(stop=stop).delete()
        return None
    if stop.route_id is None or stop.state != StopState.PENDING:
        raise BusinessRuleViolation("Only a pending stop on a route can be pinned.", code="stop_not_pinnable")
    pin, _ = StopPin.objects.update_or_create(stop=stop, defaults={"org": actor.org, "kind": PinKind(kind)})
    return pin


def late_risk_scan(*, org, now: datetime | None = None) -> list[OpsException]:
    """Report a late-risk exception for each active route of today whose ETAs say a
    pending stop will start after its window closes (the ETAs the route services keep
    up to date as drivers work). One open exception per route: a route already waiting
    for its replan is not reported again."""
    now = now or timezone.now()
    actor = system_actor(org)
    reported = []
    waiting = set(OpsException.objects.filter(org=org, kind=K.LATE_RISK,
                                              status__in=[ExceptionStatus.OPEN, ExceptionStatus.PROPOSED])
                  .values_list("route_id", flat=True))
    routes = Route.objects.filter(org=org, status__in=ACTIVE, date__gte=timezone.localdate(now) - timedelta(days=1))
    for route in routes.exclude(pk__in=waiting):
        late = (route.stops.filter(state=StopState.PENDING, eta__isnull=False, order__window_end__isnull=False)
                .select_related("order"))
        if any(s.eta > s.order.window_end for s in late):
            reported.append(exception_report(actor=actor, data=ExceptionIn(kind="late_risk", route=route.pk,
                                                                           notes="ETAs past a window"), now=now))
    return reported
