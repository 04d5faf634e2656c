"""Where missing coordinates come from. The offline default never guesses: it answers
"unknown", and the order is created unplaced and flagged for a person to look at.

A real geocoder (Nominatim, Pelias, a commercial API) implements ``Geocoder`` and is
installed with ``geocoder_install`` at start-up; there is one geocoder per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from apps.dispatch.models import GeocodeConfidence


@dataclass(frozen=True)
class AddressQuery:
    line1: str
    city: str
    postal_code: str
    region: str
    country: str


@dataclass(frozen=True)
class GeocodeResult:
    lat: float
    lng: float
    confidence: GeocodeConfidence


class Geocoder(Protocol):
    name: str

    def geocode(self, query: AddressQuery) -> GeocodeResult | None: ...


class OfflineGeocoder:
    """No network, no guess: every address is unknown."""

    name = "offline"

    def geocode(self, query: AddressQuery) -> GeocodeResult | None:
        return None


_current: Geocoder = OfflineGeocoder()


def geocoder() -> Geocoder:
    return _current


def geocoder_install(new: Geocoder) -> Geocoder:
    """Replace the process's geocoder; returns the previous one (tests put it back)."""
    global _current
    previous, _current = _current, new
    return previous
