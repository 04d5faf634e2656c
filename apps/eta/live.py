"""ETAs that follow the driver: refreshed on accepted pings from a cached route plan.

``location_receive`` hands each driver's newest shown position here after commit
(``observe``: a dict assignment, no I/O). The position fan-out thread calls ``flush``
every tick; for each driver with a new position, at most once per ETA_MIN_INTERVAL_S,
the tracker predicts every remaining stop of the driver's active route from the cached
plan (no database reads), writes the ETAs that moved by ETA_MIN_CHANGE_S or more in one
statement, records late-risk changes, and pushes the new ETAs to the organization's
consoles and to the tracking pages of the orders concerned.

The plan cache is per process. It is replaced by ``eta_route_refresh`` after every
change to a route made in this process, and checked every ETA_PLAN_TTL_S against the
database (``plans.route_stamps``: one query for every plan due), which bounds how long a
change made by another process goes unseen: a plan whose route changed is loaded again,
the others are kept. Writes only ever touch open stops, so a stale plan cannot move a
visited stop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings

from apps.realtime.groups import org_group, track_group

from .plans import Position, RoutePlan, dt, plan_load, route_stamps, rules_refresh

logger = logging.getLogger(__name__)


class EtaTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, Position] = {}
        self._plans: dict[int, tuple[float, RoutePlan | None]] = {}  # driver id -> (monotonic check time, plan)
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
        later tick. ``timings`` (the benchmark) receives each driver's prediction time in
        s, and then each driver's share of the batch's write."""
        from apps.notifications.triggers import on_etas
        from apps.tracking import fanout

        from .services import eta_batch_apply

        mono = time.monotonic()
        with self._lock:
            due = {d: p for d, p in self._pending.items() if mono - self._last_run.get(d, float("-inf")) >= min_interval}
            for driver_id in due:
                del self._pending[driver_id]
                self._last_run[driver_id] = mono
        if not due:
            return 0
        plans = self.plans_for(list(due))
        predicted: list[tuple[RoutePlan, list[float], float]] = []
        positions: list[Position] = []
        for driver_id, position in due.items():
            started = time.perf_counter()
            plan = plans.get(driver_id)
            try:
                if plan is not None and plan.stops:
                    moment = now if now is not None else time.time()
                    predicted.append((plan, plan.predict(position=position, now=moment), moment))
                    positions.append(position)
            except Exception:  # one driver's failure must not stop the others' ETAs
                logger.warning("ETA refresh for driver %s failed", driver_id, exc_info=True)
                self.invalidate(driver_id=driver_id)
            if timings is not None:
                timings.append(time.perf_counter() - started)
        if not predicted:
            return 0
        started = time.perf_counter()
        try:
            # One transaction and one ETA statement for the whole batch: a commit, or
            # a statement, per route would cost more than the refresh itself
            # (docs/performance.md).
            results = eta_batch_apply(predicted)
        except Exception:
            # The batch did not commit: what the plans think they wrote is wrong; reload them.
            logger.warning("ETA batch of %d routes failed", len(predicted), exc_info=True)
            for plan, *_ in predicted:
                if plan.driver_id is not None:  # None would drop every driver's plan
                    self.invalidate(driver_id=plan.driver_id)
            return 0
        if timings is not None:
            share = (time.perf_counter() - started) / len(predicted)
            timings[:] = [t + share for t in timings]
        messages: list[tuple[str, dict[str, Any]]] = []
        for (plan, etas, moment), applied, position in zip(predicted, results, positions, strict=True):
            messages.extend(live_messages(plan, applied, position=position, now=moment))
            on_etas(plan, etas)
        fanout.send_live(messages)
        return len(predicted)

    def plan_for(self, driver_id: int) -> RoutePlan | None:
        return self.plans_for([driver_id]).get(driver_id)

    def plans_for(self, driver_ids: list[int]) -> dict[int, RoutePlan | None]:
        """The cached plan of each driver, checked every ETA_PLAN_TTL_S.

        The plans due for a check are validated together: one query (``route_stamps``)
        says which route each driver follows now and whether anything it was built from
        changed. An unchanged plan is kept, with its organization's settings read again
        (two queries for the batch); a changed one is loaded again (its legs reused when
        its stops are the same), a missing one loaded. A route edited by another process
        is therefore seen at the first ping after the check falls due."""
        mono = time.monotonic()
        ttl = settings.ETA_PLAN_TTL_S
        with self._lock:
            cached = {d: self._plans.get(d) for d in driver_ids}
        result = {d: c[1] for d, c in cached.items() if c is not None and mono - c[0] <= ttl}
        due = [d for d in driver_ids if d not in result]
        if not due:
            return result
        try:
            stamps = route_stamps(due)
        except Exception:
            logger.warning("checking %d ETA plans failed; the next tick tries again", len(due), exc_info=True)
            return result
        kept: list[RoutePlan] = []
        fresh: dict[int, RoutePlan | None] = {}
        for driver_id in due:
            previous = cached[driver_id][1] if cached[driver_id] is not None else None
            found = stamps.get(driver_id)
            if found is None:
                fresh[driver_id] = None
            elif previous is not None and previous.route_id == found[0] and previous.stamp == found[1]:
                kept.append(previous)
                fresh[driver_id] = previous
            else:
                try:
                    fresh[driver_id] = _load_plan(found[0], stamp=found[1], previous=previous)
                except Exception:  # one route's failure must not stop the others' ETAs
                    logger.warning("ETA plan of driver %s failed to load", driver_id, exc_info=True)
                    continue
        if kept:
            try:
                rules_refresh(kept)
            except Exception:
                logger.warning("organization settings for ETA plans not read; kept as they were", exc_info=True)
        checked = time.monotonic()
        with self._lock:
            for driver_id, plan in fresh.items():
                # A plan adopted meanwhile (a change in this process) is newer than ours.
                if self._plans.get(driver_id) is cached[driver_id]:
                    self._plans[driver_id] = (checked, plan)
                result[driver_id] = self._plans.get(driver_id, (checked, plan))[1]
        return result

    def refresh(self, *, driver_id: int, position: Position, now: float | None = None,
                messages: list[tuple[str, dict[str, Any]]] | None = None) -> int:
        """Refresh one driver's route. The live messages join ``messages`` (the caller
        sends them), or are sent here."""
        from apps.notifications.triggers import on_etas
        from apps.tracking import fanout

        from .services import eta_batch_apply

        plan = self.plan_for(driver_id)
        if plan is None or not plan.stops:
            return 0
        moment = now if now is not None else time.time()
        etas = plan.predict(position=position, now=moment)
        try:
            (applied,) = eta_batch_apply([(plan, etas, moment)])
        except Exception:
            self.invalidate(driver_id=driver_id)
            raise
        out = live_messages(plan, applied, position=position, now=moment)
        on_etas(plan, etas)
        if messages is None:
            fanout.send_live(out)
        else:
            messages.extend(out)
        return 1


def _load_plan(route_id: int, *, stamp: tuple, previous: RoutePlan | None = None) -> RoutePlan | None:
    """A driver's active route (``route_stamps`` chose it), its prediction rows loaded."""
    from .services import prediction_rows_ensure

    plan = plan_load(route_id=route_id, previous=previous)
    if plan is not None:
        plan.stamp = stamp
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

    changed = sorted(set(applied.changed) | set(applied.late_changed)) if applied.late_changed else applied.changed
    etas, stops, late_open = applied.etas, plan.stops, plan.late_open
    messages: list[tuple[str, dict[str, Any]]] = []
    if changed:
        messages.append((org_group(plan.org_id), {"type": "etas", "route_id": plan.route_id, "etas": [
            {"stop_id": stops[i].stop_id, "order_id": stops[i].order_id, "eta": dt(etas[i]).isoformat(),
             "late_risk": stops[i].stop_id in late_open}
            for i in changed]}))
    fresh = position is not None and now - position.at <= settings.ETA_POSITION_MAX_AGE_S
    within_stops, within_s = plan.visibility.within_stops, plan.visibility.within_minutes * 60
    track_shown = plan.track_shown
    where = (position.lat, position.lng, position.at) if position is not None else None
    for stop, away, eta in zip(stops, plan.stops_away(), etas, strict=True):
        # Visibility.driver_visible, inlined: this runs for every stop of every route on every ping.
        visible = fresh and (away <= within_stops or eta - now <= within_s)
        late = stop.stop_id in late_open
        # The page shows the window (on 5-minute marks), the stops before it and the late
        # flag: an ETA moving inside the same window changes nothing it shows.
        shows = (*eta_window(eta, now), away, late)
        if not visible and track_shown.get(stop.stop_id) == shows:
            continue
        track_shown[stop.stop_id] = shows
        block = delivery_block(eta=eta, now=now, stops_away=away, late_risk=late,
                               driver_first_name=plan.driver_first_name, position=where, driver_visible=visible)
        messages.append((track_group(stop.order_id), {"type": "delivery", "delivery": block}))
    return messages


tracker = EtaTracker()


def observe(*, driver_id: int, lat: float, lng: float, at: float) -> None:
    tracker.observe(driver_id=driver_id, lat=lat, lng=lng, at=at)


def flush(*, now: float | None = None, min_interval: float = 0.0, timings: list[float] | None = None) -> int:
    return tracker.flush(now=now, min_interval=min_interval, timings=timings)
