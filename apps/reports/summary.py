"""Maintaining the summary tables.

The unit is an organization-day. After a transaction that records stop, order or route
events commits, the days those events touch are marked stale (``summary_note_events``)
and a background job rebuilds them (``summary_refresh_stale``); ``manage.py
reports_rebuild`` rebuilds a range of days. A rebuild recomputes the whole day from the
dispatch tables (facts.py), so it is idempotent: running it twice, or after a crash,
gives the same rows. It never increments counters in place, which is what makes late
and out-of-order syncs harmless: a stop completed offline on Monday and synced on
Tuesday marks Monday stale, and Monday is recomputed.

Why a whole day and not a delta per event: a day of 5,000 attempts rebuilds in about a
tenth of a second, stale marks coalesce (a burst of events is one rebuild), and there
is no way for a delta to be applied twice or lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Organization
from apps.dispatch.models import Order, Route
from apps.events.models import Event

from . import facts, kpis
from .models import DailyStats, Grain, ReportDay, RouteStats

logger = logging.getLogger(__name__)

# Events that can change a report figure. Everything else (order.created, hub and
# fleet changes, locations) leaves the summary as it is.
RELEVANT = ("stop.", "order.delivered", "order.failed", "order.cancelled", "route.")
# How long the figures may lag behind the operation (plus the rebuild itself).
REFRESH_DELAY = timedelta(seconds=10)


def summary_rebuild_day(*, org: Organization, day: date) -> tuple[int, int]:
    """Recompute one organization-day. Takes the day's row lock; returns the number of
    stats and route rows written."""
    with transaction.atomic():
        marker, _ = ReportDay.objects.get_or_create(org=org, day=day)
        marker = ReportDay.objects.select_for_update().get(pk=marker.pk)
        scope = facts.Scope(org=org, date_from=day, date_to=day)
        counters, attempts = facts.stop_counters(scope)
        routes = facts.route_rows(scope, attempts)
        DailyStats.objects.filter(org=org, day=day).delete()
        RouteStats.objects.filter(org=org, day=day).delete()
        stats = DailyStats.objects.bulk_create([
            DailyStats(org=org, grain=grain, day=key[0], hub_id=key[1], driver_id=key[2], source=key[3], **values)
            for grain, rows in rollups(counters).items() for key, values in rows.items()
        ], batch_size=1000)
        RouteStats.objects.bulk_create([RouteStats(org=org, **row) for row in routes], batch_size=1000)
        marker.stale = False
        marker.built_at = timezone.now()
        marker.save(update_fields=["stale", "built_at"])
    return len(stats), len(routes)


def rollups(counters: dict[facts.Key, dict[str, int]]) -> dict[str, dict[facts.Key, dict[str, int]]]:
    """The full grain and its two rollups (without source, without driver)."""
    by_driver: dict[facts.Key, dict[str, int]] = {}
    by_source: dict[facts.Key, dict[str, int]] = {}
    for (day, hub, driver, source), values in counters.items():
        kpis.add(by_driver.setdefault((day, hub, driver, ""), {}), values)
        kpis.add(by_source.setdefault((day, hub, None, source), {}), values)
    return {Grain.FULL: counters, Grain.DRIVER: by_driver, Grain.SOURCE: by_source}


def summary_mark_stale(*, org_id: int, days: Iterable[date]) -> int:
    """Mark days stale; return how many were fresh before (0: a rebuild is already due).

    On a busy day every driver action lands here and the day is already stale: that
    case is one read and no write."""
    days = set(days)
    known = dict(ReportDay.objects.filter(org_id=org_id, day__in=days).values_list("day", "stale"))
    newly = 0
    for day in days - known.keys():
        _, created = ReportDay.objects.get_or_create(org_id=org_id, day=day, defaults={"stale": True})
        newly += created or ReportDay.objects.filter(org_id=org_id, day=day, stale=False).update(stale=True)
    fresh = [day for day, stale in known.items() if not stale]
    if fresh:
        newly += ReportDay.objects.filter(org_id=org_id, day__in=fresh, stale=False).update(stale=True)
    return newly


def affected_days(events: Sequence[Event]) -> dict[int, set[date]]:
    """The organization-days a batch of committed events can change."""
    relevant = [e for e in events if e.type.startswith(RELEVANT)]
    if not relevant:
        return {}
    route_ids = {e.payload.get("route_id") for e in relevant if e.payload.get("route_id")}
    route_ids |= {int(e.subject_id) for e in relevant if e.subject_type == "route"}
    route_days = dict(Route.objects.filter(pk__in=route_ids).values_list("pk", "date")) if route_ids else {}
    cancelled = [int(e.subject_id) for e in relevant if e.type == "order.cancelled"]
    out: dict[int, set[date]] = {}
    for e in relevant:
        day = route_days.get(e.payload.get("route_id")) or (route_days.get(int(e.subject_id))
                                                             if e.subject_type == "route" else None)
        if day is not None:
            out.setdefault(e.org_id, set()).add(day)
    if cancelled:
        for order in Order.objects.filter(pk__in=cancelled).select_related("org").only("org", "completed_at"):
            if order.completed_at is not None:
                out.setdefault(order.org_id, set()).add(order.completed_at.astimezone(facts.org_tz(order.org)).date())
    return out


def summary_note_events(events: Sequence[Event]) -> None:
    """After commit: mark the days the events touched stale and queue a rebuild.

    Runs after the commit (the rebuild must see the change) and never raises into the
    request that made it: at worst a day stays stale until the hourly settle job."""
    try:
        days = affected_days(events)
        newly = sum(summary_mark_stale(org_id=org_id, days=d) for org_id, d in days.items())
        if newly:
            from .tasks import reports_refresh

            # Wait a little before rebuilding: the events that follow meanwhile find the
            # day already stale and queue nothing, so a busy day costs at most one
            # rebuild per REFRESH_DELAY, however many stops are completed.
            reports_refresh.using(run_after=timezone.now() + REFRESH_DELAY).enqueue()
    except Exception:
        logger.warning("could not mark report days stale after %d events", len(events), exc_info=True)


def _claim_stale() -> ReportDay | None:
    """Claim one stale day: the conditional update means two workers never rebuild the
    same claim, and a day marked stale again meanwhile is rebuilt again later."""
    for marker in ReportDay.objects.filter(stale=True).order_by("-day")[:20]:
        if ReportDay.objects.filter(pk=marker.pk, stale=True).update(stale=False):
            return marker
    return None


def summary_refresh_stale(*, limit: int = 1000) -> int:
    """Rebuild stale days, newest first; return how many were rebuilt."""
    done = 0
    while done < limit:
        marker = _claim_stale()
        if marker is None:
            break
        try:
            summary_rebuild_day(org=marker.org, day=marker.day)
        except Exception:
            ReportDay.objects.filter(pk=marker.pk).update(stale=True)  # try again next time
            raise
        done += 1
    return done


def summary_settle(*, now: datetime | None = None, days_back: int = 2) -> int:
    """Mark the last few days stale for every organization that has them: location
    backlogs uploaded late add distance without recording an event. Hourly."""
    now = now or timezone.now()
    since = (now - timedelta(days=days_back)).date()
    return ReportDay.objects.filter(day__gte=since, stale=False).update(stale=True)
