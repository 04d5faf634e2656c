"""What a customer's tracking page may see of the delivery: the privacy rules in one
place, shared by the page's snapshot and its live updates, so both follow them.

- Only this order: nothing here reads or returns another customer's stop.
- The driver by first name only; their position only when they are within the
  organization's N stops or M minutes of this customer (``TrackingSettings``), and
  never once the order is completed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# The ETA window's half-width: a fifth of the time still to go, between 5 and 30
# minutes (a day-ahead promise is an hour wide; a driver three minutes away is "in 5 minutes").
WINDOW_FRACTION = 0.2
WINDOW_MIN_S = 5 * 60
WINDOW_MAX_S = 30 * 60
ROUND_S = 5 * 60


def _iso(value: float) -> str:
    return datetime.fromtimestamp(value, tz=UTC).isoformat()


def eta_window(eta: float, now: float) -> tuple[float, float]:
    """An honest range around the ETA that narrows as the driver gets closer, on
    5-minute marks (customers plan around "10:15-10:40", not "10:27:13")."""
    half = min(WINDOW_MAX_S, max(WINDOW_MIN_S, WINDOW_FRACTION * max(0.0, eta - now)))
    start = max(now, eta - half)
    start -= start % ROUND_S
    end = eta + half
    end += (-end) % ROUND_S
    return start, end


def delivery_block(*, eta: float | None, now: float, stops_away: int | None, late_risk: bool,
                   driver_first_name: str, position: tuple[float, float, float] | None,
                   driver_visible: bool) -> dict[str, Any]:
    """The live part of a tracking page: ETA and its window, how many stops before
    this one, and the driver (first name; position only when ``driver_visible``)."""
    window = eta_window(eta, now) if eta is not None else None
    driver = None
    if driver_first_name:
        shown = position if (driver_visible and position is not None) else None
        driver = {"first_name": driver_first_name,
                  "position": {"lat": shown[0], "lng": shown[1], "at": _iso(shown[2])} if shown else None}
    return {
        "eta": _iso(eta) if eta is not None else None,
        "window_from": _iso(window[0]) if window else None,
        "window_to": _iso(window[1]) if window else None,
        "stops_away": stops_away,
        "late_risk": late_risk,
        "driver": driver,
    }
