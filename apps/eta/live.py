"""ETAs that follow the driver: refreshed on accepted pings from a cached route plan.

``location_receive`` hands each driver's newest shown position here after commit
(``observe``: a dict assignment, no I/O). The position fan-out thread calls ``flush``
every tick; for each driver with a new position, at most once per ETA_MIN_INTERVAL_S,
the tracker predicts every remaining stop of the driver's active route from the cached
plan (no database reads), writes the ETAs that moved by ETA_MIN_CHANGE_S or more in one
statement, records late-risk changes, and pushes the new ETAs to the organization's
consoles and to the tracking pages of the orders concerned.

The plan cache is per process. It is replaced by ``eta_route_refresh`` after every
change to a route made in this process, and reloaded after ETA_PLAN_TTL_S whatever
happens, which bounds how long a change made by another process goes unseen; writes
only ever touch open stops, so a stale plan cannot move a visited stop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.dispatch.models import Route, RouteStatus
from apps.realtime.groups import org_group, track_group

from .plans import Position, RoutePlan, dt, plan_load

logger = logging.getLogger(__name__)


class EtaTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, Position] = {}
        self._plans: dict[int, tuple[float, RoutePlan | None]] = {}  # driver id -> (monotonic load time, plan)
        self._last_run: dict[int, float] = {}

    # --- producers (request and socket threads) -------------------------------------

    def observe(self, *, driver_id: int, lat: float, lng: float, at: float) -> None:
        with self._lock:
            queued = self._pending.get(driver_id)
            if queued is None or queued.at < at:
                self._pending[driver_id] = Position(lat, lng, at)

    def has_pending(self) -> bool:
        return bool(self._pending)

    def adopt(self, plan: RoutePlan) -> None:
        """Use a freshly loaded plan (after a full refresh) for its driver, and forget any
        other driver's plan of the same route (the route changed hands)."""
        with self._lock:
            for driver_id, (_, cached) in list(self._plans.items()):
                if cached is not None and cached.route_id == plan.route_id and driver_id != plan.driver_id:
                    del self._plans[driver_id]
            if plan.driver_id is not None:
                previous = self._plans.get(plan.driver_id, (0.0, None))[1]
                if previous is not None and previous.route_id == plan.route_id:
                    plan.shown = {**previous.shown, **plan.shown}
                self._plans[plan.driver_id] = (time.monotonic(), plan)

    def invalidate(self, *, driver_id: int | None = None) -> None:
        with self._lock:
            if driver_id is None:
                self._plans.clear()
            else:
                self._plans.pop(driver_id, None)

    def expire(self) -> None:
        """Make every cached plan due for its periodic reload (the benchmark)."""
        with self._lock:
            self._plans = {d: (float("-inf"), plan) for d, (_, plan) in self._plans.items()}

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()
            self._plans.clear()
            self._last_run.clear()

    # --- the refresh (fan-out thread, bench) -----------------------------------------

    def flush(self, *, now: float | None = None, min_interval: float = 0.0, timings: list[float] | None = None) -> int:
        """Refresh the ETAs of every driver with a new position, then push what changed
        in one hop to the channel layer; return how many routes were refreshed. A driver
        refreshed less than ``min_interval`` seconds ago keeps its position pending for a
        later tick. ``timings`` (the benchmark) receives each driver's refresh time in s."""
        from apps.tracking import fanout

        mono = time.monotonic()
        with self._lock:
            due = {d: p for d, p in self._pending.items() if mono - self._last_run.get(d, float("-inf")) >= min_interval}
            for driver_id in due:
                del self._pending[driver_id]
                self._last_run[driver_id] = mono
        from apps.notifications.triggers import on_etas

        from .services import Applied, eta_late_risk_apply, nothing_to_write

        if not due:
            return 0
        # One transaction for the whole batch: a commit per route would cost more than the
        # refresh itself on a database that syncs its log (PostgreSQL, bench/eta.py). Each
        # route writes in a savepoint; the late-risk alerts follow in short transactions of
        # their own, so the organization's event counter is never held for the batch.
        predicted: list[tuple[RoutePlan, list[float], Position, float, int]] = []
        for driver_id, position in due.items():
            started = time.perf_counter()
            try:
                plan = self.plan_for(driver_id)
                if plan is not None and plan.stops:
                    moment = now if now is not None else time.time()
                    predicted.append((plan, plan.predict(position=position, now=moment), position, moment,
                                      len(timings) if timings is not None else 0))
            except Exception:  # one driver's failure must not stop the others' ETAs
                logger.warning("ETA refresh for driver %s failed", driver_id, exc_info=True)
                self.invalidate(driver_id=driver_id)
            if timings is not None:
                timings.append(time.perf_counter() - started)
        done: list[tuple[RoutePlan, Any, Position, float]] = []
        late_work: list = []
        writes = [item for item in predicted if not nothing_to_write(item[0], item[1])]
        try:
            if writes:
                with transaction.atomic():
                    done = [self._apply(item, late_work, timings) for item in writes]
        except Exception:
            # The batch did not commit: what the plans think they wrote is wrong; reload them.
            logger.warning("ETA batch of %d routes failed", len(writes), exc_info=True)
            for plan, *_ in writes:
                self.invalidate(driver_id=plan.driver_id)
            done, late_work = [], []
        done += [(plan, Applied(etas=etas, late=plan.late(etas)), position, moment)
                 for plan, etas, position, moment, _ in predicted if not any(plan is w[0] for w in writes)]
        eta_late_risk_apply(late_work)
        messages: list[tuple[str, dict[str, Any]]] = []
        for plan, applied, position, moment in done:
            messages.extend(live_messages(plan, applied, position=position, now=moment))
            on_etas(plan, applied.etas)
        fanout.send_live(messages)
        return len(done)

    def _apply(self, item: tuple, late_work: list, timings: list[float] | None) -> tuple:
        from .services import eta_apply_live

        plan, etas, position, moment, timing = item
        started = time.perf_counter()
        applied = eta_apply_live(plan, etas, now=moment, late_later=late_work)
        if timings is not None:
            timings[timing] += time.perf_counter() - started  # the driver's write, beside its prediction
        return plan, applied, position, moment

    def plan_for(self, driver_id: int) -> RoutePlan | None:
        with self._lock:
            cached = self._plans.get(driver_id)
        if cached is not None and time.monotonic() - cached[0] <= settings.ETA_PLAN_TTL_S:
            return cached[1]
        plan = _load_driver_plan(driver_id, previous=cached[1] if cached is not None else None)
        with self._lock:
            self._plans[driver_id] = (time.monotonic(), plan)
        return plan

    def refresh(self, *, driver_id: int, position: Position, now: float | None = None,
                messages: list[tuple[str, dict[str, Any]]] | None = None) -> int:
        """Refresh one driver's route. The live messages join ``messages`` (the caller
        sends them), or are sent here."""
        from apps.tracking import fanout

        from .services import eta_apply_live

        plan = self.plan_for(driver_id)
        if plan is None or not plan.stops:
            return 0
        moment = now if now is not None else time.time()
        etas = plan.predict(position=position, now=moment)
        applied = eta_apply_live(plan, etas, now=moment)
        out = live_messages(plan, applied, position=position, now=moment)
        from apps.notifications.triggers import on_etas

        on_etas(plan, etas)
        if messages is None:
            fanout.send_live(out)
        else:
            messages.extend(out)
        return 1


def _load_driver_plan(driver_id: int, previous: RoutePlan | None = None) -> RoutePlan | None:
    """The driver's active route: the one under way, else the next published one."""
    from .services import prediction_rows_ensure

    routes = list(Route.objects.select_related("driver").filter(
        driver_id=driver_id, status__in=(RouteStatus.IN_PROGRESS, RouteStatus.PUBLISHED)).order_by("date", "id")[:20])
    if not routes:
        return None
    route = next((r for r in routes if r.status == RouteStatus.IN_PROGRESS), routes[0])
    plan = plan_load(route=route, previous=previous)
    if plan is not None:
        prediction_rows_ensure(plan)
    return plan


def push(plan: RoutePlan, applied: Any, *, position: Position | None, now: float) -> None:
    from apps.tracking import fanout

    fanout.send_live(live_messages(plan, applied, position=position, now=now))


def live_messages(plan: RoutePlan, applied: Any, *, position: Position | None,
                  now: float) -> list[tuple[str, dict[str, Any]]]:
    """The ETAs that moved for the organization's consoles, and for each tracking page
    whose ETA moved or that may see the driver. Ephemeral, like positions: a lost push
    is repaired by the next one or by the page's snapshot."""
    from apps.tracking.privacy import delivery_block, eta_window

    changed = sorted(set(applied.changed) | set(applied.late_changed))
    messages: list[tuple[str, dict[str, Any]]] = []
    if changed:
        messages.append((org_group(plan.org_id), {"type": "etas", "route_id": plan.route_id, "etas": [
            {"stop_id": plan.stops[i].stop_id, "order_id": plan.stops[i].order_id,
             "eta": dt(applied.etas[i]).isoformat(), "late_risk": plan.stops[i].stop_id in plan.late_open}
            for i in changed]}))
    fresh = position is not None and now - position.at <= settings.ETA_POSITION_MAX_AGE_S
    for i, (stop, away) in enumerate(zip(plan.stops, plan.stops_away(), strict=True)):
        eta = applied.etas[i]
        visible = fresh and plan.visibility.driver_visible(stops_away=away, eta=eta, now=now)
        # The page shows the window (on 5-minute marks), the stops before it and the late
        # flag: an ETA moving inside the same window changes nothing it shows.
        shows = (*eta_window(eta, now), away, stop.stop_id in plan.late_open)
        if not visible and plan.track_shown.get(stop.stop_id) == shows:
            continue
        plan.track_shown[stop.stop_id] = shows
        block = delivery_block(
            eta=eta, now=now, stops_away=away, late_risk=stop.stop_id in plan.late_open,
            driver_first_name=plan.driver_first_name,
            position=(position.lat, position.lng, position.at) if position is not None else None,
            driver_visible=visible)
        messages.append((track_group(stop.order_id), {"type": "delivery", "delivery": block}))
    return messages


tracker = EtaTracker()


def observe(*, driver_id: int, lat: float, lng: float, at: float) -> None:
    tracker.observe(driver_id=driver_id, lat=lat, lng=lng, at=at)


def flush(*, now: float | None = None, min_interval: float = 0.0, timings: list[float] | None = None) -> int:
    return tracker.flush(now=now, min_interval=min_interval, timings=timings)
