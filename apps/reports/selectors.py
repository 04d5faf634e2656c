"""Reads for reports: filters, KPIs, daily series, breakdowns and drill-down rows.

Every figure comes from one of two paths with the same definitions:
- ``mode="summary"`` (what the API serves): sums over ``DailyStats`` / ``RouteStats``;
- ``mode="raw"`` (the baseline the benchmark times, and a check in tests): the same
  counters computed from the dispatch tables for the whole range (facts.py).

A partner's API key with a ``source`` sees only that source: its filters are narrowed
before any query, route figures (routes carry other partners' parcels) are withheld,
and per-driver views are refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.common.exceptions import DomainError, ValidationFailed
from apps.dispatch.models import Driver, Hub, Order, StopOutcome

from . import facts, kpis, seams
from .models import DailyStats, Grain, ReportDay, RouteStats

MAX_RANGE_DAYS = 800  # two years and a bit: a year against the last one
DEFAULT_RANGE_DAYS = 30
GROUPS = ("day", "hub", "driver", "source")


class ReportForbidden(DomainError):
    status_code = 403
    code = "permission_denied"


@dataclass(frozen=True)
class ReportFilters:
    actor: Actor
    date_from: date
    date_to: date
    hub_id: int | None = None
    driver_id: int | None = None
    source: str | None = None

    @property
    def partner_source(self) -> str | None:
        client = self.actor.api_client
        return client.order_source if client is not None and client.order_source else None

    def scope(self) -> facts.Scope:
        return facts.Scope(org=self.actor.org, date_from=self.date_from, date_to=self.date_to, hub_id=self.hub_id,
                           driver_id=self.driver_id, source=self.source)

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "hub": self.hub_id,
                "driver": self.driver_id, "source": self.source}


def _int(params: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    raw = str(raw)
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 2**63 - 1:
        errors[name] = ["Give a whole number (an id)."]
        return None
    return int(raw)


def _date(params: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> date | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        errors[name] = ["Give a date as YYYY-MM-DD."]
        return None


def report_filters(*, actor: Actor, params: Mapping[str, Any]) -> ReportFilters:
    """Parse and check ``from``, ``to``, ``hub``, ``driver`` and ``source``; narrow a partner key."""
    errors: dict[str, list[str]] = {}
    today = timezone.now().astimezone(facts.org_tz(actor.org)).date()
    date_to = _date(params, "to", errors) or today
    date_from = _date(params, "from", errors) or date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    hub_id, driver_id = _int(params, "hub", errors), _int(params, "driver", errors)
    source = str(params.get("source") or "") or None
    if source is not None and len(source) > 64:
        errors["source"] = ["At most 64 characters."]
    if not errors:
        if date_to < date_from:
            errors["to"] = ["The range ends before it starts."]
        elif (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
            errors["from"] = [f"At most {MAX_RANGE_DAYS} days at once."]
        if hub_id is not None and not Hub.objects.filter(org=actor.org, pk=hub_id).exists():
            errors["hub"] = ["No such hub."]
        if driver_id is not None and not Driver.objects.filter(org=actor.org, pk=driver_id).exists():
            errors["driver"] = ["No such driver."]
    if errors:
        raise ValidationFailed(errors)
    filters = ReportFilters(actor=actor, date_from=date_from, date_to=date_to, hub_id=hub_id, driver_id=driver_id,
                            source=source)
    own = filters.partner_source
    if own is not None:
        if driver_id is not None:
            raise ReportForbidden("A partner key cannot report per driver.")
        if source is not None and source != own:
            raise ReportForbidden(f"This key reads only the orders of source '{own}'.")
        filters = replace(filters, source=own)
    return filters


# --- summary path -------------------------------------------------------------------

STOP_SUMS = {f"t_{name}": Sum(name) for name in kpis.STOP_COUNTERS}
ROUTE_SUMS = {f"t_{name}": aggregate for name, aggregate in {
    "routes": Count("id"),
    "route_attempts": Sum("attempts"),
    "work_s": Sum("work_s"),
    "worked_routes": Count("work_s"),
    "worked_attempts": Sum("attempts", filter=Q(work_s__isnull=False)),
    "planned_m": Sum("planned_m"),
    "planned_s": Sum("planned_s"),
    "tracked_routes": Count("actual_m"),
    "tracked_planned_m": Sum("planned_m", filter=Q(actual_m__isnull=False)),
    "tracked_planned_s": Sum("planned_s", filter=Q(actual_m__isnull=False)),
    "actual_m": Sum("actual_m"),
    "actual_s": Sum("actual_s"),
}.items()}  # prefixed: an aggregate named like a column would shadow it for the next one


def _untag(row: dict[str, Any]) -> dict[str, Any]:
    return {k[2:]: v for k, v in row.items() if k.startswith("t_")}


def _grain(f: ReportFilters, by: str | None) -> str:
    """The smallest grain that can answer: the full one only for driver and source at once."""
    per_driver = f.driver_id is not None or by == "driver"
    per_source = f.source is not None or by == "source"
    if per_driver and per_source:
        return Grain.FULL
    return Grain.DRIVER if per_driver else Grain.SOURCE


def _stats(f: ReportFilters, by: str | None) -> QuerySet[DailyStats]:
    qs = DailyStats.objects.filter(org=f.actor.org, grain=_grain(f, by), day__gte=f.date_from, day__lte=f.date_to)
    if f.hub_id is not None:
        qs = qs.filter(hub_id=f.hub_id)
    if f.driver_id is not None:
        qs = qs.filter(driver_id=f.driver_id)
    if f.source is not None:
        qs = qs.filter(source=f.source)
    return qs


def _route_stats(f: ReportFilters) -> QuerySet[RouteStats]:
    qs = RouteStats.objects.filter(org=f.actor.org, day__gte=f.date_from, day__lte=f.date_to)
    if f.hub_id is not None:
        qs = qs.filter(hub_id=f.hub_id)
    if f.driver_id is not None:
        qs = qs.filter(driver_id=f.driver_id)
    return qs


Grouped = dict[Any, tuple[dict[str, int], dict[str, int] | None]]


def _summary_grouped(f: ReportFilters, by: str | None) -> Grouped:
    with_routes = f.source is None and by != "source"
    field = {"day": "day", "hub": "hub_id", "driver": "driver_id", "source": "source"}.get(by or "")
    if field is None:
        stops = {None: _untag(_stats(f, by).aggregate(**STOP_SUMS))}
        routes = {None: _untag(_route_stats(f).aggregate(**ROUTE_SUMS))} if with_routes else {}
    else:
        stops = {row[field]: _untag(row) for row in _stats(f, by).values(field).annotate(**STOP_SUMS).order_by(field)}
        routes = ({row[field]: _untag(row)
                   for row in _route_stats(f).values(field).annotate(**ROUTE_SUMS).order_by(field)}
                  if with_routes else {})
    keys = list(stops) + [k for k in routes if k not in stops]
    return {k: (stops.get(k, {}), (routes.get(k, {}) if with_routes else None)) for k in keys}


# --- raw path (the baseline) --------------------------------------------------------


def _raw_grouped(f: ReportFilters, by: str | None) -> Grouped:
    counters, attempts = facts.stop_counters(f.scope())
    index = {"day": 0, "hub": 1, "driver": 2, "source": 3}.get(by or "")
    stops: dict[Any, dict[str, int]] = defaultdict(dict)
    for key, values in counters.items():
        kpis.add(stops[key[index] if index is not None else None], values)
    with_routes = f.source is None and by != "source"
    routes: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    if with_routes:
        field = {"day": "day", "hub": "hub_id", "driver": "driver_id"}.get(by or "")
        for row in facts.route_rows(f.scope(), attempts):
            routes[row[field] if field else None].append(row)
    keys = sorted(set(stops) | set(routes), key=lambda k: (k is None, str(k) if by == "source" else k or 0))
    if by is None:
        keys = [None]
    return {k: (stops.get(k, {}), facts.route_counters(routes.get(k, ())) if with_routes else None) for k in keys}


def _grouped(f: ReportFilters, by: str | None, mode: str) -> Grouped:
    return _raw_grouped(f, by) if mode == "raw" else _summary_grouped(f, by)


# --- what the API serves ------------------------------------------------------------


def freshness(f: ReportFilters) -> dict[str, Any]:
    days = ReportDay.objects.filter(org=f.actor.org, day__gte=f.date_from, day__lte=f.date_to)
    stale = days.filter(stale=True).count()
    last = days.order_by("-built_at").values_list("built_at", flat=True).first()
    return {"stale_days": stale, "built_at": last}


def report_kpis(f: ReportFilters, *, mode: str = "summary") -> dict[str, Any]:
    stops, routes = _grouped(f, None, mode)[None]
    return {
        "filters": f.as_dict(),
        "kpis": kpis.finalize(stops, routes),
        "webhooks": seams.webhook_delivery_success(org_id=f.actor.org.pk, source=f.source, date_from=f.date_from,
                                                   date_to=f.date_to),
        "freshness": freshness(f) if mode == "summary" else None,
    }


def report_series(f: ReportFilters, *, mode: str = "summary") -> list[dict[str, Any]]:
    """One entry per day of the range, days without activity included (zeros)."""
    grouped = _grouped(f, "day", mode)
    out = []
    day = f.date_from
    with_routes = f.source is None
    while day <= f.date_to:
        stops, routes = grouped.get(day, ({}, {} if with_routes else None))
        out.append({"day": day.isoformat(), **kpis.finalize(stops, routes)})
        day += timedelta(days=1)
    return out


def report_breakdown(f: ReportFilters, *, by: str, mode: str = "summary") -> list[dict[str, Any]]:
    """Figures per hub, driver or source, busiest first, with names."""
    if by == "driver" and f.partner_source is not None:
        raise ReportForbidden("A partner key cannot report per driver.")
    grouped = _grouped(f, by, mode)
    names: dict[Any, str] = {}
    if by == "hub":
        names = {h.pk: f"{h.name} ({h.code})" for h in Hub.objects.filter(org=f.actor.org, pk__in=[k for k in grouped if k])}
    elif by == "driver":
        names = dict(Driver.objects.filter(org=f.actor.org, pk__in=[k for k in grouped if k]).values_list("pk", "name"))
    rows = []
    for key, (stops, routes) in grouped.items():
        if by == "driver" and key is None:
            label = "No driver (cancelled before an attempt)"
        elif by in ("hub", "driver"):
            label = names.get(key, "(none)" if key is None else f"#{key}")
        else:
            label = str(key)
        rows.append({"key": key, "label": label, **kpis.finalize(stops, routes)})
    rows.sort(key=lambda r: (-r["attempts"], -r["cancelled"], r["label"]))
    return rows


# --- drill-down ---------------------------------------------------------------------

DRILL_METRICS = ("attempts", "delivered", "failed", "first_attempts", "first_attempt_failed", "on_time", "early",
                 "late", "pod_required", "eta_samples", "cancelled",
                 *(f"failed:{r}" for r in kpis.REASONS))


def drill_metric(params: Mapping[str, Any]) -> str:
    metric = str(params.get("metric") or "attempts")
    if metric not in DRILL_METRICS:
        raise ValidationFailed({"metric": [f"One of: {', '.join(DRILL_METRICS)}."]})
    return metric


def drill_queryset(f: ReportFilters, metric: str) -> QuerySet:
    """The attempts (stops) behind a figure, or the cancelled orders for ``cancelled``;
    newest first. The same filters and definitions as the figure."""
    if metric == "cancelled":
        return facts.cancellations_queryset(f.scope()).select_related("hub")
    qs = (facts.attempts_queryset(f.scope()).select_related("order", "route__hub", "route__driver")
          .annotate(arrival=Least(Coalesce("arrived_at", "completed_at"), "completed_at")))  # kpis.arrival_time
    windowed = Q(order__window_start__isnull=False) | Q(order__window_end__isnull=False)
    early = Q(order__window_start__isnull=False, arrival__lt=F("order__window_start"))
    late = Q(order__window_end__isnull=False, arrival__gt=F("order__window_end"))
    succeeded = Q(outcome=StopOutcome.SUCCEEDED)
    if metric == "delivered":
        qs = qs.filter(succeeded)
    elif metric == "failed":
        qs = qs.filter(outcome=StopOutcome.FAILED)
    elif metric.startswith("failed:"):
        qs = qs.filter(outcome=StopOutcome.FAILED, failure_reason=metric.split(":", 1)[1])
    elif metric == "first_attempts":
        qs = qs.filter(first_id=F("id"))
    elif metric == "first_attempt_failed":
        qs = qs.filter(first_id=F("id"), outcome=StopOutcome.FAILED)
    elif metric == "on_time":
        qs = qs.filter(succeeded & windowed).exclude(early).exclude(late)
    elif metric == "early":
        qs = qs.filter(succeeded & early)
    elif metric == "late":
        qs = qs.filter(succeeded & late).exclude(early)
    elif metric == "pod_required":
        qs = qs.filter(succeeded).exclude(order__pod_requirements=[])
    elif metric == "eta_samples":
        qs = qs.filter(Q(eta__isnull=False) | Q(planned_arrival__isnull=False))
    return qs.order_by("-id")


def drill_rows(f: ReportFilters, metric: str, rows: list[Any]) -> list[dict[str, Any]]:
    """Rows people read (and CSV exports): one per attempt, or per cancelled order."""
    partner = f.partner_source is not None
    if metric == "cancelled":
        return [{
            "order_id": o.pk, "external_id": o.external_id, "reference": o.reference, "source": o.source,
            "customer_name": o.customer_name, "hub": o.hub.code if o.hub else None, "driver": None, "day": None,
            "attempt": None, "outcome": "cancelled", "failure_reason": "", "window_start": o.window_start,
            "window_end": o.window_end, "arrival": None, "completed_at": o.completed_at, "punctuality": None,
            "eta_error_s": None, "pod_required": o.pod_requirements, "pod_missing": [], "stop_id": None,
        } for o in rows]
    out = []
    for s in rows:
        row = {"id": s.pk, "notes": s.notes, "eta": s.eta, "planned_arrival": s.planned_arrival,
               **{name: getattr(s, name, None) for name in (*seams.POD_FLAGS, "predicted_departure")}}
        required = list(s.order.pod_requirements or [])
        captured = seams.pod_proofs_captured(row)
        predicted = seams.stop_predicted_arrival(row)
        arrival = kpis.arrival_time(s.arrived_at, s.completed_at)
        out.append({
            "order_id": s.order_id, "external_id": s.order.external_id, "reference": s.order.reference,
            "source": s.order.source, "customer_name": s.order.customer_name,
            "hub": s.route.hub.code if s.route and s.route.hub else None,
            "driver": None if partner or not s.route or not s.route.driver else s.route.driver.name,
            "day": s.route.date if s.route else None,
            "attempt": "first" if s.first_id == s.pk else "re-attempt",
            "outcome": "delivered" if s.outcome == StopOutcome.SUCCEEDED else "failed",
            "failure_reason": s.failure_reason, "window_start": s.order.window_start, "window_end": s.order.window_end,
            "arrival": arrival, "completed_at": s.completed_at,
            "punctuality": (kpis.window_verdict(arrival, s.order.window_start, s.order.window_end)
                            if s.outcome == StopOutcome.SUCCEEDED else None),
            "eta_error_s": round(abs((arrival - predicted).total_seconds())) if arrival and predicted else None,
            "pod_required": required,
            "pod_missing": [r for r in required if r not in captured] if s.outcome == StopOutcome.SUCCEEDED else [],
            "stop_id": s.pk,
        })
    return out


def order_sources(actor: Actor) -> list[str]:
    """The order sources of the organization (for the partner filter)."""
    return list(Order.objects.filter(org=actor.org).values_list("source", flat=True).distinct().order_by("source"))
