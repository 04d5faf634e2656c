"""The KPIs as pure functions: what one delivery attempt or one route contributes, and
how summed counters become rates. No database here; ``facts.py`` feeds these from the
dispatch tables and ``selectors.py`` sums them (from the summary tables or raw).

docs/reports.md defines every figure in words; the tests in tests/reports/ check them
against a hand-computed history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.dispatch.models import FailureReason

REASONS: tuple[str, ...] = tuple(FailureReason.values)

# ETA error histogram: upper bounds in seconds of each bucket (the last is open).
# A p90 cannot be summed across days, a histogram can: the p90 is read from the
# summed histogram and interpolated inside its bucket. The edges are finer where
# dispatchers care (a few minutes) and coarse past an hour.
ETA_BUCKETS_S: tuple[int, ...] = (60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)
ETA_BUCKET_COUNT = len(ETA_BUCKETS_S) + 1

# Counters of the daily summary, in the order of the CSV columns.
STOP_COUNTERS: tuple[str, ...] = (
    "attempts", "delivered", "failed", *(f"failed_{r}" for r in REASONS),
    "first_attempts", "first_attempt_delivered", "cancelled",
    "windowed", "on_time", "early", "late",
    "pod_required", "pod_complete",
    "eta_samples", "eta_error_sum_s", *(f"eta_h{i}" for i in range(ETA_BUCKET_COUNT)),
)
ROUTE_COUNTERS: tuple[str, ...] = (
    "routes", "route_attempts", "work_s", "worked_routes", "worked_attempts",
    "planned_m", "planned_s", "tracked_routes", "tracked_planned_m", "tracked_planned_s", "actual_m", "actual_s",
)

# Drive time counts the time between two location fixes only when the driver moved
# faster than walking pace between them and the fixes are close enough in time to
# say so; a longer silence is neither driving nor standing still, so it is left out.
MOVING_MPS = 1.0
MAX_FIX_GAP_S = 300


def eta_bucket(error_s: float) -> int:
    for i, edge in enumerate(ETA_BUCKETS_S):
        if error_s <= edge:
            return i
    return len(ETA_BUCKETS_S)


def arrival_time(arrived_at: datetime | None, completed_at: datetime | None) -> datetime | None:
    """When the driver got there: the "arrived" tap, or the completion when there was no
    tap, or when the completion is earlier (an arrival recorded with a later clock: an
    offline tap synced without its device time cannot postdate the delivery)."""
    if arrived_at is None:
        return completed_at
    return min(arrived_at, completed_at) if completed_at is not None else arrived_at


def window_verdict(arrival: datetime | None, start: datetime | None, end: datetime | None) -> str | None:
    """``on_time``, ``early`` or ``late`` for a delivery at ``arrival``; None without a window."""
    if arrival is None or (start is None and end is None):
        return None
    if start is not None and arrival < start:
        return "early"
    if end is not None and arrival > end:
        return "late"
    return "on_time"


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt (a completed delivery stop), as the reports see it."""

    succeeded: bool
    failure_reason: str
    first_attempt: bool
    arrival: datetime | None  # when the driver got there (device time): arrived, else completed
    window_start: datetime | None
    window_end: datetime | None
    predicted_arrival: datetime | None
    pod_required: frozenset[str]
    pod_captured: frozenset[str]


def attempt_counters(a: Attempt) -> dict[str, int]:
    c: dict[str, int] = {"attempts": 1}
    if a.succeeded:
        c["delivered"] = 1
        verdict = window_verdict(a.arrival, a.window_start, a.window_end)
        if verdict is not None:
            c["windowed"] = 1
            c[verdict] = 1
        if a.pod_required:
            c["pod_required"] = 1
            if a.pod_required <= a.pod_captured:
                c["pod_complete"] = 1
    else:
        c["failed"] = 1
        reason = a.failure_reason if a.failure_reason in REASONS else FailureReason.OTHER
        c[f"failed_{reason}"] = 1
    if a.first_attempt:
        c["first_attempts"] = 1
        if a.succeeded:
            c["first_attempt_delivered"] = 1
    if a.arrival is not None and a.predicted_arrival is not None:
        error = abs((a.arrival - a.predicted_arrival).total_seconds())
        c["eta_samples"] = 1
        c["eta_error_sum_s"] = round(error)
        c[f"eta_h{eta_bucket(error)}"] = 1
    return c


def add(into: dict[str, int], counters: Mapping[str, int | None]) -> None:
    for key, value in counters.items():
        if value:
            into[key] = into.get(key, 0) + value


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def eta_p90_s(histogram: list[int]) -> float | None:
    """The 90th percentile of the summed histogram, interpolated inside its bucket.

    The rank is the nearest-rank definition (ceil(0.9 n)); inside a bucket the errors
    are taken as spread evenly. In the open last bucket the answer is its lower edge
    (at least that much)."""
    n = sum(histogram)
    if n == 0:
        return None
    rank = math.ceil(0.9 * n)
    seen = 0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            lower = ETA_BUCKETS_S[i - 1] if i > 0 else 0
            if i >= len(ETA_BUCKETS_S):
                return float(lower)
            upper = ETA_BUCKETS_S[i]
            return round(lower + (upper - lower) * (rank - seen) / count, 1)
        seen += count
    return None  # unreachable: the ranks add up to n


def finalize(stop: Mapping[str, Any], route: Mapping[str, Any] | None) -> dict[str, Any]:
    """Summed counters to the figures people read. ``route`` is None when route figures
    do not apply (a partner's view: routes carry other partners' parcels too)."""
    g = lambda key: int(stop.get(key) or 0)  # noqa: E731 - a local shorthand
    histogram = [g(f"eta_h{i}") for i in range(ETA_BUCKET_COUNT)]
    out: dict[str, Any] = {
        "attempts": g("attempts"),
        "delivered": g("delivered"),
        "failed": g("failed"),
        "cancelled": g("cancelled"),
        "failed_by_reason": {r: g(f"failed_{r}") for r in REASONS},
        "success_rate": _rate(g("delivered"), g("attempts")),
        "first_attempts": g("first_attempts"),
        "first_attempt_delivered": g("first_attempt_delivered"),
        "first_attempt_success_rate": _rate(g("first_attempt_delivered"), g("first_attempts")),
        "windowed": g("windowed"),
        "on_time": g("on_time"),
        "early": g("early"),
        "late": g("late"),
        "on_time_rate": _rate(g("on_time"), g("windowed")),
        "pod_required": g("pod_required"),
        "pod_complete": g("pod_complete"),
        "pod_compliance": _rate(g("pod_complete"), g("pod_required")),
        "eta_samples": g("eta_samples"),
        "eta_mean_error_s": round(g("eta_error_sum_s") / g("eta_samples"), 1) if g("eta_samples") else None,
        "eta_p90_error_s": eta_p90_s(histogram),
    }
    if route is None:
        out["routes"] = None
        return out
    r = lambda key: int(route.get(key) or 0)  # noqa: E731
    out["routes"] = {
        "routes": r("routes"),
        "stops_per_route": round(r("route_attempts") / r("routes"), 2) if r("routes") else None,
        "stops_per_hour": round(r("worked_attempts") / (r("work_s") / 3600), 2) if r("work_s") else None,
        "planned_km": round(r("planned_m") / 1000, 2),
        "planned_drive_h": round(r("planned_s") / 3600, 2),
        "tracked_routes": r("tracked_routes"),
        "tracked_planned_km": round(r("tracked_planned_m") / 1000, 2),
        "tracked_planned_drive_h": round(r("tracked_planned_s") / 3600, 2),
        "actual_km": round(r("actual_m") / 1000, 2) if r("tracked_routes") else None,
        "actual_drive_h": round(r("actual_s") / 3600, 2) if r("tracked_routes") else None,
    }
    return out


def sum_rows(rows: Iterable[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, int]:
    keys = tuple(keys)
    total: dict[str, int] = dict.fromkeys(keys, 0)
    for row in rows:
        for key in keys:
            total[key] += int(row.get(key) or 0)
    return total
