"""Reads: how accurate the ETAs were.

For every completed stop with a recorded prediction, the absolute error between the
prediction and the actual arrival (``arrived_at``, or ``completed_at`` when the driver
never tapped "arrived"), at two horizons: the first ETA once the route was dispatched,
and the ETA when the driver set off towards the stop. Reported as count, mean and p90
(nearest rank) per organization and per route.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from typing import Any

from apps.accounts.models import Organization
from apps.dispatch.models import Stop, StopState

HORIZONS = ("first", "departure")


def _stats(errors: list[float]) -> dict[str, Any]:
    if not errors:
        return {"count": 0, "mean_abs_s": None, "p90_abs_s": None}
    ordered = sorted(errors)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {"count": len(ordered), "mean_abs_s": round(sum(ordered) / len(ordered), 1), "p90_abs_s": round(p90, 1)}


def eta_accuracy(*, org: Organization, date_from: date, date_to: date) -> dict[str, Any]:
    """Accuracy over the organization's routes dated ``date_from``..``date_to`` (inclusive)."""
    rows = (
        Stop.objects.filter(org=org, state=StopState.COMPLETED, route__date__gte=date_from, route__date__lte=date_to,
                            prediction__isnull=False)
        .values_list("route_id", "route__name", "route__date", "route__driver__name", "arrived_at", "completed_at",
                     "prediction__first_eta", "prediction__departure_eta")
        .order_by("route__date", "route_id")
    )
    overall: dict[str, list[float]] = {h: [] for h in HORIZONS}
    per_route: dict[int, dict[str, Any]] = {}
    errors: dict[int, dict[str, list[float]]] = defaultdict(lambda: {h: [] for h in HORIZONS})
    for route_id, name, day, driver, arrived_at, completed_at, first, departure in rows:
        actual = arrived_at or completed_at
        if actual is None:
            continue
        per_route.setdefault(route_id, {"route_id": route_id, "name": name or f"Route {route_id}",
                                        "date": day.isoformat(), "driver": driver})
        for horizon, predicted in (("first", first), ("departure", departure)):
            if predicted is not None:
                error = abs((actual - predicted).total_seconds())
                overall[horizon].append(error)
                errors[route_id][horizon].append(error)
    return {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "organization": {h: _stats(overall[h]) for h in HORIZONS},
        "routes": [{**info, **{h: _stats(errors[rid][h]) for h in HORIZONS}} for rid, info in per_route.items()],
    }
