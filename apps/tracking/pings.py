"""Pure rules for location pings: parse one ping, and the filters (modelled on
Traccar's FilterHandler) that decide whether a stored ping may be shown.

No database and no clock here: ``services.location_receive`` supplies ``now``, the
limits and the reference point, which keeps every rule testable on its own.

Rejection codes (a rejected ping is not stored; the client should drop it, except
``batch_limit``, which asks for the ping to be sent again in a later batch):

=====================  ==================================================================
``bad_ping``           not a JSON object
``invalid_coordinates`` lat/lng missing, not numbers, out of range, or exactly 0, 0
``invalid_accuracy``   accuracy_m missing, not a number, or negative
``invalid_speed``      speed_mps not a number or negative (null and absent are fine)
``invalid_heading``    heading not a number in 0..360 (null and absent are fine)
``invalid_time``       at missing, not an ISO 8601 string, or without a UTC offset
``future_time``        at more than LOCATION_FUTURE_TOLERANCE_S ahead of the server
``too_old``            at older than the retention window (a reset clock, e.g. 1901)
``batch_limit``        beyond LOCATION_MAX_BATCH in one call; send it again
``driver_not_allowed`` the driver is unknown, inactive or of another organization
=====================  ==================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from .models import PingStatus

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


@dataclass(frozen=True, slots=True)
class Limits:
    max_accuracy_m: float
    max_speed_mps: float
    future_tolerance: timedelta
    max_age: timedelta
    retention: timedelta

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_accuracy_m=settings.LOCATION_MAX_ACCURACY_M,
            max_speed_mps=settings.LOCATION_MAX_SPEED_MPS,
            future_tolerance=timedelta(seconds=settings.LOCATION_FUTURE_TOLERANCE_S),
            max_age=timedelta(hours=settings.LOCATION_MAX_AGE_H),
            retention=timedelta(days=settings.LOCATION_RETENTION_DAYS),
        )


@dataclass(frozen=True, slots=True)
class Ping:
    index: int  # position in the batch the client sent, for its acknowledgement
    lat: float
    lng: float
    accuracy_m: float
    speed_mps: float | None
    heading: float | None
    device_time: datetime


@dataclass(frozen=True, slots=True)
class Fix:
    """A point the next ping is compared with: the last shown one before it."""

    lat: float
    lng: float
    device_time: datetime


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message}


def _number(value: Any) -> float | None:
    """A finite JSON number, or None. Booleans and numeric strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _device_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and parsed.utcoffset() is not None else None


def parse_ping(index: int, raw: Any, *, now: datetime, limits: Limits) -> Ping | Rejection:
    """Validate one ping as the driver app sends it (docs/realtime.md); unknown keys
    (such as ``"type": "ping"``) are ignored."""
    if not isinstance(raw, dict):
        return Rejection(index, "bad_ping", "A ping must be a JSON object.")
    lat, lng = _number(raw.get("lat")), _number(raw.get("lng"))
    if lat is None or lng is None or not -90 <= lat <= 90 or not -180 <= lng <= 180:
        return Rejection(index, "invalid_coordinates", "lat must be a number in -90..90 and lng in -180..180.")
    if lat == 0 and lng == 0:
        # Traccar's "zero" filter: 0, 0 is what a receiver without a fix reports.
        return Rejection(index, "invalid_coordinates", "0, 0 is not a position (no GPS fix).")
    accuracy = _number(raw.get("accuracy_m"))
    if accuracy is None or accuracy < 0:
        return Rejection(index, "invalid_accuracy", "accuracy_m must be a non-negative number of metres.")
    speed = raw.get("speed_mps")
    if speed is not None:
        speed = _number(speed)
        if speed is None or speed < 0:
            return Rejection(index, "invalid_speed", "speed_mps must be a non-negative number or null.")
    heading = raw.get("heading")
    if heading is not None:
        heading = _number(heading)
        if heading is None or not 0 <= heading <= 360:
            return Rejection(index, "invalid_heading", "heading must be a number of degrees in 0..360 or null.")
    at = _device_time(raw.get("at"))
    if at is None:
        return Rejection(index, "invalid_time",
                         "at must be an ISO 8601 time with a UTC offset, e.g. 2026-11-23T09:14:02+01:00.")
    if at > now + limits.future_tolerance:
        # Refused, not stored: a point from the future would stay "the latest" and pin
        # the marker until the real clock caught up with it.
        return Rejection(index, "future_time",
                         f"at is more than {int(limits.future_tolerance.total_seconds())} s ahead of the server clock.")
    if at < now - limits.retention:
        return Rejection(index, "too_old", "at is older than the location history is kept; check the device clock.")
    return Ping(index=index, lat=lat, lng=lng, accuracy_m=accuracy, speed_mps=speed, heading=heading, device_time=at)


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine); within 0.5 % of the ellipsoid, plenty for a speed check."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def implied_speed_mps(reference: Fix, ping: Ping) -> float:
    # At least one second apart: sub-second pings would turn metres of ordinary GPS
    # noise into "jumps" (5 m in 50 ms is 100 m/s).
    seconds = max(1.0, (ping.device_time - reference.device_time).total_seconds())
    return distance_m(reference.lat, reference.lng, ping.lat, ping.lng) / seconds


def classify(ping: Ping, *, reference: Fix | None, now: datetime, limits: Limits) -> str:
    """The status a valid ping is stored with.

    The jump check compares with the last *shown* point before this one, so one wild
    point does not poison the next. A real teleport (a receiver that froze in a tunnel
    and then caught up) is shown again once distance / elapsed time drops under the
    limit: 470 m takes 7 s at 70 m/s (the Munich trace in tests/tracking does this)."""
    if ping.device_time < now - limits.max_age:
        return PingStatus.STALE_TIME
    if ping.accuracy_m > limits.max_accuracy_m:
        return PingStatus.INACCURATE
    if reference is not None and implied_speed_mps(reference, ping) > limits.max_speed_mps:
        return PingStatus.JUMP
    return PingStatus.SHOWN
