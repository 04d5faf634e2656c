"""Building pings relative to the (possibly frozen) clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

# A delivery day, 09:00 UTC: where the ``clock`` fixture stops time.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# Bob's depot, Invalidenstraße, Berlin.
DEPOT = (52.5290, 13.3726)


def at(seconds_ago: float = 0, *, now: datetime | None = None) -> str:
    """A device time ``seconds_ago`` before now, as a phone in Berlin writes it."""
    moment = (now or timezone.now()) - timedelta(seconds=seconds_ago)
    return moment.astimezone(timezone.get_fixed_timezone(60)).isoformat()


def ping(seconds_ago: float = 0, *, lat: float = DEPOT[0], lng: float = DEPOT[1], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"lat": lat, "lng": lng, "accuracy_m": 8, "speed_mps": 6.1, "heading": 90,
                            "at": at(seconds_ago)}
    body.update(fields)
    return body


def north_of_depot(metres: float) -> tuple[float, float]:
    """A point ``metres`` due north of the depot (1° of latitude is ~111.2 km)."""
    return DEPOT[0] + metres / 111_195.0, DEPOT[1]


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)
