"""Writes of the ETA engine: store a route's ETAs, keep the accuracy horizons, raise and
clear late-risk alerts, and push the new ETAs to consoles and tracking pages.

Two entry points:

- ``eta_route_refresh`` (full): called by ``route_schedule`` inside the transaction of
  every change to a dispatched route (replan, stop visited, order cancelled, route
  started). It reloads the plan, writes every remaining stop's ETA, moves the route's
  ``updated_at`` (other processes' cached plans see the change at their next check), and
  hands the new plan to the live tracker after commit.
- ``eta_batch_apply`` (cheap): the live tracker's flush, from cached plans; it writes
  only the ETAs that moved by ETA_MIN_CHANGE_S or more, for all routes of the flush in
  one statement.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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


_EPOCH = datetime(1970, 1, 1)  # naive UTC, as the SQLite backend stores datetimes


def _sqlite_text(seconds: float) -> str:
    """What ``adapt_datetimefield_value`` stores for this moment on SQLite (naive UTC,
    ``str(datetime)``), without the per-value timezone conversion it costs there."""
    return str(_EPOCH + timedelta(seconds=seconds))


def write_etas(pairs: list[tuple[int, float]]) -> None:
    """One UPDATE for all the ETAs that moved in a flush, whatever their route: ``pairs``
    are (stop id, POSIX seconds). Only open stops: a stop visited through another
    process keeps its last ETA.

    Hand-written SQL because this is the per-ping write (bench/eta.py): one statement per
    route cost a round trip and a plan each (PostgreSQL: 0.8 ms per route of 30), and
    building a CASE through the ORM cost more Python than the rest of the refresh. The
    values travel as two arrays (PostgreSQL) or one JSON document (SQLite), so the
    statement is the same text whatever the number of stops."""
    if not pairs:
        return
    table = connection.ops.quote_name(Stop._meta.db_table)
    with connection.cursor() as cursor:
        # Only the model's own table name is interpolated; values are parameters.
        if connection.vendor == "postgresql":
            cursor.execute(
                f'UPDATE {table} AS s SET "eta" = to_timestamp(v.eta) '  # noqa: S608
                'FROM unnest(%s::bigint[], %s::float8[]) AS v(id, eta) WHERE s."id" = v.id AND s."state" IN (%s, %s)',
                [[pk for pk, _ in pairs], [eta for _, eta in pairs], *OPEN_STATES])
        elif connection.vendor == "sqlite" and str(connection.timezone) == "UTC":
            document = json.dumps([[pk, _sqlite_text(eta)] for pk, eta in pairs])
            cursor.execute(
                f'UPDATE {table} SET "eta" = v.eta FROM (SELECT json_extract(value, \'$[0]\') AS id, '  # noqa: S608
                f'json_extract(value, \'$[1]\') AS eta FROM json_each(%s)) AS v '
                f'WHERE {table}."id" = v.id AND {table}."state" IN (%s, %s)', [document, *OPEN_STATES])
        else:
            adapt = connection.ops.adapt_datetimefield_value
            for start in range(0, len(pairs), 400):
                chunk = pairs[start:start + 400]
                cases = " ".join(["WHEN %s THEN %s"] * len(chunk))
                marks = ", ".join(["%s"] * len(chunk))
                params: list[object] = []
                for pk, eta in chunk:
                    params += [pk, adapt(dt(eta))]
                params += [pk for pk, _ in chunk] + list(OPEN_STATES)
                cursor.execute(f'UPDATE {table} SET "eta" = CASE "id" {cases} END '  # noqa: S608
                               f'WHERE "id" IN ({marks}) AND "state" IN (%s, %s)', params)


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


def _apply_all(plan: RoutePlan, etas: list[float], *, now: float, events: list[NewEvent] | None) -> Applied:
    """Store every ETA of the plan (a full refresh). Caller is inside a transaction.
    Late-risk events join ``events`` (the caller records them with its own) or are
    recorded here."""
    result = Applied(etas=etas, late=plan.late(etas), changed=list(range(len(etas))))
    now_dt = dt(now)
    write_etas([(stop.stop_id, eta) for stop, eta in zip(plan.stops, etas, strict=True)])
    plan.shown.update((stop.stop_id, eta) for stop, eta in zip(plan.stops, etas, strict=True))
    _record_first(plan, etas, now_dt)
    _record_departure(plan, etas, now_dt)
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


def _record_first(plan: RoutePlan, etas: list[float], now: datetime) -> None:
    """The first ETA of each stop once its route is dispatched: what the morning message
    promised, the long accuracy horizon. Recorded once per stop."""
    first = [(s.stop_id, dt(e)) for s, e in zip(plan.stops, etas, strict=True) if s.stop_id not in plan.first_recorded]
    if first:
        StopPrediction.objects.filter(stop_id__in=[p for p, _ in first], first_eta__isnull=True).update(
            first_eta=_when(first), first_eta_at=now)
        plan.first_recorded.update(p for p, _ in first)
        plan.first_etas.update((p, value.timestamp()) for p, value in first)


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
    applied = _apply_all(plan, plan.predict(position=position, now=moment), now=moment, events=events)
    # The stamp other processes check their cached plan against (plans.route_stamps):
    # every change to a dispatched route passes here, whatever it touched.
    Route.objects.filter(pk=route.pk).update(updated_at=timezone.now())

    def after_commit() -> None:
        from apps.notifications.triggers import on_etas

        from . import live

        live.tracker.adopt(plan)
        live.push(plan, applied, position=position, now=moment)
        on_etas(plan, applied.etas)

    transaction.on_commit(after_commit)


def _late_flips(plan: RoutePlan, etas: list[float], late_flags: list[bool]) -> bool:
    """Whether ``_late_risk`` would raise or clear an alert: decided in memory, so a
    route whose alerts stay as they are opens no transaction."""
    clear_by = settings.ETA_LATE_CLEAR_S
    late_open = plan.late_open
    for stop, eta, is_late in zip(plan.stops, etas, late_flags, strict=True):
        if stop.arrived_at is not None:
            continue
        if is_late:
            if stop.stop_id not in late_open:
                return True
        elif stop.stop_id in late_open and (stop.window_end is None or eta <= stop.window_end - clear_by):
            return True
    return False


def _horizons_due(plan: RoutePlan) -> bool:
    """Whether a first ETA or a departure ETA is still to be recorded (once per stop)."""
    first_recorded = plan.first_recorded
    if any(stop.stop_id not in first_recorded for stop in plan.stops):
        return True
    nxt = plan.stops[0] if plan.stops else None
    return (plan.status == "in_progress" and nxt is not None and nxt.arrived_at is None
            and nxt.stop_id not in plan.departure_recorded)


def eta_batch_apply(batch: list[tuple[RoutePlan, list[float], float]]) -> list[Applied]:
    """Store the live refreshes of one flush (each ``(plan, etas, now)``), every route at once.

    Decided in memory first: the ETAs that moved by ETA_MIN_CHANGE_S or more, the
    accuracy horizons still to record, the late-risk alerts that flip. Then one
    transaction holds one UPDATE for all moved ETAs (``write_etas``) and the rare
    horizon writes; nothing at all when nothing moved, the common case of a ping. The
    late-risk changes follow, each route in a short transaction of its own, so the
    organization's event counter is never held for the batch.

    The plans remember what they wrote only once it committed. If the batch fails the
    exception reaches the caller, whose plans no longer match the database: it must
    drop them (``EtaTracker.flush`` does)."""
    threshold = settings.ETA_MIN_CHANGE_S
    results: list[Applied] = []
    moved: list[tuple[int, float]] = []
    horizons: list[tuple[RoutePlan, list[float], float]] = []
    late_work: list = []
    for plan, etas, now in batch:
        late_flags = plan.late(etas)
        applied = Applied(etas=etas, late=late_flags)
        changed, shown = applied.changed, plan.shown
        for i, stop in enumerate(plan.stops):
            before = shown.get(stop.stop_id)
            if before is None or abs(before - etas[i]) >= threshold:
                changed.append(i)
                moved.append((stop.stop_id, etas[i]))
        if _horizons_due(plan):
            horizons.append((plan, etas, now))
        if _late_flips(plan, etas, late_flags):
            late_work.append((plan, etas, applied, dt(now)))
        results.append(applied)
    if moved or horizons:
        with transaction.atomic():
            write_etas(moved)
            for plan, etas, now in horizons:
                _record_first(plan, etas, dt(now))
                _record_departure(plan, etas, dt(now))
    for (plan, etas, _), applied in zip(batch, results, strict=True):
        for i in applied.changed:
            plan.shown[plan.stops[i].stop_id] = etas[i]
    eta_late_risk_apply(late_work)
    return results


__all__ = ["Position", "eta_batch_apply", "eta_route_refresh", "prediction_rows_ensure", "write_etas"]
