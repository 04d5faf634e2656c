"""Writes of the ETA engine: store a route's ETAs, keep the accuracy horizons, raise and
clear late-risk alerts, and push the new ETAs to consoles and tracking pages.

Two entry points share ``_apply``:

- ``eta_route_refresh`` (full): called by ``route_schedule`` inside the transaction of
  every change to a dispatched route (replan, stop visited, order cancelled, route
  started). It reloads the plan, writes every remaining stop's ETA, and hands the new
  plan to the live tracker after commit.
- ``live.EtaTracker`` (cheap): on each accepted ping, from the cached plan; it writes
  only the ETAs that moved by ETA_MIN_CHANGE_S or more, in one statement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateTimeField, Value, When
from django.utils import timezone

from apps.accounts.models import Organization
from apps.dispatch.models import Route, Stop, StopState
from apps.events import types as ev
from apps.events.services import NewEvent, events_record

from .models import StopPrediction
from .plans import Position, RoutePlan, driver_position, dt, plan_load

logger = logging.getLogger(__name__)

OPEN_STATES = (StopState.PENDING, StopState.ARRIVED)


@dataclass
class Applied:
    """What one refresh changed, for the live push."""

    etas: list[float]
    late: list[bool]
    changed: list[int] = field(default_factory=list)  # indexes into plan.stops
    late_changed: list[int] = field(default_factory=list)


def _when(pairs: list[tuple[int, datetime]]) -> Case:
    return Case(*(When(pk=pk, then=Value(value)) for pk, value in pairs), output_field=DateTimeField())


def _write_etas(pairs: list[tuple[int, datetime]]) -> None:
    """One UPDATE for all the ETAs that moved. Only open stops: a stop visited through
    another process keeps its last ETA.

    Written as SQL because this is the per-ping write: building the same CASE through
    the ORM (``Case(When(...))`` for 30 stops) cost 1-2 ms of Python per ping, several
    times the rest of the refresh (bench/eta.py)."""
    table = connection.ops.quote_name(Stop._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    cases = " ".join(["WHEN %s THEN %s"] * len(pairs))
    marks = ", ".join(["%s"] * len(pairs))
    params: list[object] = []
    for pk, value in pairs:
        params += [pk, adapt(value)]
    params += [pk for pk, _ in pairs] + list(OPEN_STATES)
    with connection.cursor() as cursor:
        # Only placeholders and the model's own table name are interpolated; values are parameters.
        cursor.execute(f'UPDATE {table} SET "eta" = CASE "id" {cases} END WHERE "id" IN ({marks}) '  # noqa: S608
                       f'AND "state" IN (%s, %s)', params)


def prediction_rows_ensure(plan: RoutePlan) -> None:
    """Load what is already recorded for the plan's stops (creating missing rows), so
    the per-ping path knows without asking again."""
    ids = [s.stop_id for s in plan.stops]
    existing = {row[0]: row for row in StopPrediction.objects.filter(stop_id__in=ids)
                .values_list("stop_id", "first_eta", "departure_eta", "late_risk_since")}
    missing = [StopPrediction(stop_id=i, org_id=plan.org_id, route_id=plan.route_id) for i in ids if i not in existing]
    if missing:
        StopPrediction.objects.bulk_create(missing, ignore_conflicts=True)
    plan.first_recorded = {i for i, row in existing.items() if row[1] is not None}
    plan.first_etas = {i: row[1].timestamp() for i, row in existing.items() if row[1] is not None}
    plan.departure_recorded = {i for i, row in existing.items() if row[2] is not None}
    plan.late_open = {i for i, row in existing.items() if row[3] is not None}


def _apply(plan: RoutePlan, etas: list[float], *, now: float, force: bool,
           events: list[NewEvent] | None = None, late_later: list | None = None) -> Applied:
    """Store what moved. Caller is inside a transaction. Late-risk events join ``events``
    (the caller records them with its own) or are recorded here; with ``late_later`` the
    late-risk work is handed back to run in its own transaction (``eta_late_risk_apply``)."""
    threshold = settings.ETA_MIN_CHANGE_S
    result = Applied(etas=etas, late=plan.late(etas))
    for i, (stop, eta) in enumerate(zip(plan.stops, etas, strict=True)):
        shown = plan.shown.get(stop.stop_id)
        if force or shown is None or abs(shown - eta) >= threshold:
            result.changed.append(i)
    now_dt = dt(now)
    if result.changed:
        pairs = [(plan.stops[i].stop_id, dt(etas[i])) for i in result.changed]
        _write_etas(pairs)
        for i in result.changed:
            plan.shown[plan.stops[i].stop_id] = etas[i]
    first = [(s.stop_id, dt(e)) for s, e in zip(plan.stops, etas, strict=True) if s.stop_id not in plan.first_recorded]
    if first:
        StopPrediction.objects.filter(stop_id__in=[p for p, _ in first], first_eta__isnull=True).update(
            first_eta=_when(first), first_eta_at=now_dt)
        plan.first_recorded.update(p for p, _ in first)
        plan.first_etas.update((p, value.timestamp()) for p, value in first)
    _record_departure(plan, etas, now_dt)
    if late_later is not None:
        late_later.append((plan, etas, result, now_dt))
    else:
        _late_risk(plan, etas, result, now_dt, events)
    return result


def eta_late_risk_apply(work: list) -> None:
    """The late-risk part of batched live refreshes, each route in its own short
    transaction: the claim and its event commit together, and the organization's event
    counter is locked only as long as one route takes."""
    for plan, etas, result, now in work:
        try:
            with transaction.atomic():
                _late_risk(plan, etas, result, now, None)
        except Exception:
            logger.warning("late-risk check of route %s failed", plan.route_id, exc_info=True)


def _record_departure(plan: RoutePlan, etas: list[float], now: datetime) -> None:
    """The ETA current when the driver set off towards the next stop: the accuracy
    horizon that matters to a customer waiting at the door. Recorded once per stop."""
    if plan.status != "in_progress" or not plan.stops or plan.stops[0].arrived_at is not None:
        return
    nxt = plan.stops[0]
    if nxt.stop_id in plan.departure_recorded:
        return
    StopPrediction.objects.filter(stop_id=nxt.stop_id, departure_eta__isnull=True).update(
        departure_eta=dt(etas[0]), departed_at=now)
    plan.departure_recorded.add(nxt.stop_id)


def _late_risk(plan: RoutePlan, etas: list[float], result: Applied, now: datetime,
               batch: list[NewEvent] | None) -> None:
    """Raise ``stop.late_risk`` when a stop is predicted past its window, once; clear it
    (``stop.late_risk_cleared``) when the prediction is back inside by ETA_LATE_CLEAR_S,
    so an ETA hovering at the edge does not flap. Each change is claimed with a
    conditional update: another process making the same prediction records nothing."""
    events: list[NewEvent] = []
    clear_by = settings.ETA_LATE_CLEAR_S
    for i, (stop, eta, is_late) in enumerate(zip(plan.stops, etas, result.late, strict=True)):
        if stop.arrived_at is not None:
            continue  # the driver is there: the alert, if any, has served its purpose

        def payload(stop=stop, eta=eta) -> dict:
            return {"stop_id": stop.stop_id, "order_id": stop.order_id, "route_id": plan.route_id,
                    "eta": dt(eta).isoformat(),
                    "window_end": dt(stop.window_end).isoformat() if stop.window_end else None}

        if is_late and stop.stop_id not in plan.late_open:
            plan.late_open.add(stop.stop_id)
            if StopPrediction.objects.filter(stop_id=stop.stop_id, late_risk_since__isnull=True).update(late_risk_since=now):
                events.append(NewEvent(ev.STOP_LATE_RISK, "stop", stop.stop_id,
                                       {**payload(), "late_by_s": round(eta - stop.window_end)}))
                result.late_changed.append(i)
        elif (not is_late and stop.stop_id in plan.late_open
              and (stop.window_end is None or eta <= stop.window_end - clear_by)):
            plan.late_open.discard(stop.stop_id)
            if StopPrediction.objects.filter(stop_id=stop.stop_id, late_risk_since__isnull=False).update(late_risk_since=None):
                events.append(NewEvent(ev.STOP_LATE_RISK_CLEARED, "stop", stop.stop_id, payload()))
                result.late_changed.append(i)
    if batch is not None:
        batch.extend(events)
    elif events:
        events_record(org=Organization.objects.get(pk=plan.org_id), actor="system", events=events)


def eta_route_refresh(*, route: Route, now: datetime | None = None, events: list[NewEvent] | None = None) -> None:
    """Recompute every remaining ETA of a dispatched route from the driver's live
    position (or the last visit), store them, and update the accuracy horizons and
    late-risk alerts. Caller holds the route lock, inside its transaction; routes that
    are not published or in progress are left alone. Late-risk events are appended to
    ``events`` when given (the caller records its batch in one go), else recorded here."""
    plan = plan_load(route=route)
    if plan is None:
        return
    moment = (now or timezone.now()).timestamp()
    prediction_rows_ensure(plan)
    position = driver_position(plan.driver_id)
    applied = _apply(plan, plan.predict(position=position, now=moment), now=moment, force=True, events=events)

    def after_commit() -> None:
        from apps.notifications.triggers import on_etas

        from . import live

        live.tracker.adopt(plan)
        live.push(plan, applied, position=position, now=moment)
        on_etas(plan, applied.etas)

    transaction.on_commit(after_commit)


def nothing_to_write(plan: RoutePlan, etas: list[float], late_flags: list[bool] | None = None) -> bool:
    """True when a refresh would store nothing: the common case of a ping, answered
    from memory without opening a transaction."""
    threshold = settings.ETA_MIN_CHANGE_S
    late_flags = late_flags if late_flags is not None else plan.late(etas)
    for stop, eta, is_late in zip(plan.stops, etas, late_flags, strict=True):
        shown = plan.shown.get(stop.stop_id)
        if shown is None or abs(shown - eta) >= threshold or stop.stop_id not in plan.first_recorded:
            return False
        if stop.arrived_at is None and (is_late != (stop.stop_id in plan.late_open)):
            return False
    nxt = plan.stops[0] if plan.stops else None
    return not (plan.status == "in_progress" and nxt is not None and nxt.arrived_at is None
                and nxt.stop_id not in plan.departure_recorded)


def eta_apply_live(plan: RoutePlan, etas: list[float], *, now: float, late_later: list | None = None) -> Applied:
    """The per-ping write: only what moved, in its own short transaction (none at all
    when nothing moved). With ``late_later`` the caller holds the transaction (a batch of
    refreshes, one commit) and runs the late-risk work afterwards."""
    late_flags = plan.late(etas)
    if nothing_to_write(plan, etas, late_flags):
        return Applied(etas=etas, late=late_flags)
    if late_later is not None:
        # Inside the caller's batch transaction, without a savepoint (two more round trips
        # per route): if one route's write fails, the batch rolls back and every plan in it
        # is reloaded (EtaTracker.flush).
        return _apply(plan, etas, now=now, force=False, late_later=late_later)
    with transaction.atomic():
        return _apply(plan, etas, now=now, force=False)


__all__ = ["Position", "eta_apply_live", "eta_route_refresh", "prediction_rows_ensure"]
