"""The ETA arithmetic, pure and allocation-light: no database, no clock, no provider.

Times are POSIX seconds (floats): this runs for every stop of every active route on
every accepted ping, and datetime arithmetic costs several times as much.

An ETA here is when the driver will be *at the door*: the arrival, or the opening of
the window if the driver gets there early and waits (what the customer cares about,
and what ``timing.schedule`` plans with).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StopSpec:
    """One remaining stop of a route, in sequence order."""

    stop_id: int
    order_id: int
    lat: float | None
    lng: float | None
    service_s: int
    window_start: float | None = None
    window_end: float | None = None
    # Set when the driver is at this stop now (state ``arrived``).
    arrived_at: float | None = None


def predict(*, now: float, to_first_s: float, legs: Sequence[float], stops: Sequence[StopSpec]) -> list[float]:
    """The ETA of each stop in ``stops`` (the route's remaining ones, in order).

    ``to_first_s`` is the travel time from where the driver is now to ``stops[0]``;
    ``legs[i]`` the travel time from ``stops[i-1]`` to ``stops[i]`` (``legs[0]`` is
    ignored). A stop the driver is at (``arrived_at``) keeps its arrival as its ETA; the
    driver leaves it when its service is done, or now if that is already past (a long
    stop delays everything after it). Each stop after that: travel, then wait for the
    window to open, then serve.
    """
    etas: list[float] = []
    clock = now
    for i, stop in enumerate(stops):
        if stop.arrived_at is not None:
            eta = stop.arrived_at
            ws = stop.window_start
            start = eta if ws is None or ws <= eta else ws
            done = start + stop.service_s
            clock = done if done > now else now
            etas.append(eta)
            continue
        clock += to_first_s if i == 0 else legs[i]
        ws = stop.window_start
        if ws is not None and clock < ws:
            clock = ws  # early: wait at the door for the window to open
        etas.append(clock)
        clock += stop.service_s
    return etas


def late(etas: Sequence[float], stops: Sequence[StopSpec], *, margin_s: float = 0.0) -> list[bool]:
    """Which stops are predicted to be reached after their window closes (+ ``margin_s``)."""
    return [s.window_end is not None and e > s.window_end + margin_s for e, s in zip(etas, stops, strict=True)]
