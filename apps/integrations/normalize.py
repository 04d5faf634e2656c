"""Normalization shared by every adapter: partner values into our order's spelling.

Pure functions. Each returns a clean value or raises ``Unusable`` with a human reason;
the adapters collect those as problems on the message instead of guessing.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from phonenumbers import geocoder as _phone_geo


class Unusable(ValueError):
    """A value that cannot be normalized; the message says why, for the attention queue."""


_SPACES = re.compile(r"\s+")


def text(value: Any, *, max_length: int | None = None) -> str:
    """Trim, collapse inner whitespace (``store_name`` arrives with ``\\r\\n``), NFC."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise Unusable(f"expected text, got {value!r}")
    cleaned = _SPACES.sub(" ", unicodedata.normalize("NFC", str(value))).strip()
    cleaned = cleaned.replace("\x00", "")
    if max_length is not None and len(cleaned) > max_length:
        raise Unusable(f"is longer than {max_length} characters")
    return cleaned


def person_name(*, full: Any = None, first: Any = None, last: Any = None, company: Any = None) -> str:
    """The recipient as written: given + family name, else the full name, else the company."""
    joined = text(" ".join(p for p in (text(first), text(last)) if p))
    return joined or text(full) or text(company)


def external_id(value: Any) -> str:
    """Ids exactly as sent. Integers stay integers (Shopify's exceed 2^53); a float means
    the id already lost digits somewhere upstream, so it is refused rather than rounded."""
    if isinstance(value, bool) or value is None:
        raise Unusable("is missing")
    if isinstance(value, float):
        raise Unusable("is a floating-point number; ids must be sent as integers or strings")
    if isinstance(value, int):
        return str(value)
    cleaned = text(value)
    if not cleaned:
        raise Unusable("is missing")
    if len(cleaned) > 128:
        raise Unusable("is longer than 128 characters")
    return cleaned


# --- countries ------------------------------------------------------------------

_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS) - {"001"}
_NAMES: dict[str, str] = {_phone_geo._region_display_name(r, "en").casefold(): r for r in _REGIONS}
_NAMES.update({
    # Spellings partners actually send beside the English names phonenumbers knows.
    "usa": "US", "united states of america": "US", "u.s.a.": "US", "uk": "GB", "great britain": "GB",
    "england": "GB", "deutschland": "DE", "österreich": "AT", "schweiz": "CH", "suisse": "CH", "france": "FR",
    "españa": "ES", "italia": "IT", "nederland": "NL", "the netherlands": "NL", "belgië": "BE", "belgique": "BE",
    "polska": "PL", "česko": "CZ", "czechia": "CZ", "danmark": "DK", "sverige": "SE", "norge": "NO",
    "suomi": "FI", "ireland": "IE", "éire": "IE", "korea": "KR", "republic of korea": "KR",
    "north macedonia": "MK", "türkiye": "TR", "ivory coast": "CI",
})
_ALPHA3 = {
    "USA": "US", "DEU": "DE", "GBR": "GB", "FRA": "FR", "AUT": "AT", "CHE": "CH", "NLD": "NL", "BEL": "BE",
    "ITA": "IT", "ESP": "ES", "POL": "PL", "CZE": "CZ", "DNK": "DK", "SWE": "SE", "NOR": "NO", "FIN": "FI",
    "IRL": "IE", "CAN": "CA", "AUS": "AU", "NZL": "NZ", "JPN": "JP", "BRA": "BR", "MEX": "MX", "ZAF": "ZA",
    "PRT": "PT", "LUX": "LU",
}


def country_code(value: Any) -> str:
    """ISO 3166-1 alpha-2 from a code (any case), a common alpha-3, or an English or local name."""
    raw = text(value)
    if not raw:
        raise Unusable("is missing")
    upper = raw.upper()
    if len(upper) == 2 and upper in _REGIONS:
        return upper
    if len(upper) == 3 and upper in _ALPHA3:
        return _ALPHA3[upper]
    found = _NAMES.get(raw.casefold())
    if found:
        return found
    raise Unusable(f"{raw!r} is not a country we recognise; send an ISO 3166 code such as DE")


# --- postal codes ------------------------------------------------------------------

# Formats of the countries we deliver in most; elsewhere the code is kept as sent, trimmed.
_POSTAL: dict[str, tuple[re.Pattern[str], Any]] = {
    "US": (re.compile(r"^(\d{5})(?:-?(\d{4}))?$"), lambda m: m[1] + (f"-{m[2]}" if m[2] else "")),
    "DE": (re.compile(r"^(\d{5})$"), lambda m: m[1]),
    "FR": (re.compile(r"^(\d{5})$"), lambda m: m[1]),
    "ES": (re.compile(r"^(\d{5})$"), lambda m: m[1]),
    "IT": (re.compile(r"^(\d{5})$"), lambda m: m[1]),
    "AT": (re.compile(r"^(\d{4})$"), lambda m: m[1]),
    "CH": (re.compile(r"^(\d{4})$"), lambda m: m[1]),
    "BE": (re.compile(r"^(\d{4})$"), lambda m: m[1]),
    "DK": (re.compile(r"^(\d{4})$"), lambda m: m[1]),
    "NL": (re.compile(r"^(\d{4}) ?([A-Z]{2})$"), lambda m: f"{m[1]} {m[2]}"),
    "PL": (re.compile(r"^(\d{2})-?(\d{3})$"), lambda m: f"{m[1]}-{m[2]}"),
    "CA": (re.compile(r"^([A-Z]\d[A-Z]) ?(\d[A-Z]\d)$"), lambda m: f"{m[1]} {m[2]}"),
    "GB": (re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2})$"), lambda m: f"{m[1]} {m[2]}"),
    "SE": (re.compile(r"^(\d{3}) ?(\d{2})$"), lambda m: f"{m[1]} {m[2]}"),
}
_NUMERIC_WIDTH = {"US": 5, "DE": 5, "FR": 5, "ES": 5, "IT": 5, "AT": 4, "CH": 4, "BE": 4, "DK": 4}


def postal_code(value: Any, country: str) -> str:
    """The country's canonical spelling (``941142414`` → ``94114-2414``, ``sw1a1aa`` →
    ``SW1A 1AA``); a code sent as a number gets back the leading zeros it lost."""
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and country in _NUMERIC_WIDTH:
        value = str(value).zfill(_NUMERIC_WIDTH[country])
    raw = text(value).upper()
    rule = _POSTAL.get(country)
    if rule is None:
        if len(raw) > 20:
            raise Unusable("is longer than 20 characters")
        return raw
    pattern, spell = rule
    match = pattern.match(raw)
    if not match:
        raise Unusable(f"{raw!r} is not a valid {country} postal code")
    return spell(match)


# --- phones --------------------------------------------------------------------------


def phone_e164(value: Any, *, region: str) -> str:
    """E.164 (``+12127363800``); national numbers are read in the delivery country."""
    raw = text(value)
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise Unusable(f"{raw!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise Unusable(f"{raw!r} is not a valid phone number for {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- units ---------------------------------------------------------------------------

_TO_KG = {"kg": Decimal(1), "g": Decimal("0.001"), "lb": Decimal("0.45359237"), "lbs": Decimal("0.45359237"),
          "oz": Decimal("0.028349523125"), "t": Decimal(1000)}
_TO_CM = {"cm": Decimal(1), "mm": Decimal("0.1"), "m": Decimal(100), "in": Decimal("2.54"), "ft": Decimal("30.48")}
_GRAM = Decimal("0.001")


def decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise Unusable(f"{value!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Unusable(f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise Unusable(f"{value!r} is not a non-negative number")
    return number


def weight_kg(value: Any, unit: str) -> Decimal:
    factor = _TO_KG.get(unit.lower())
    if factor is None:
        raise Unusable(f"unknown weight unit {unit!r}; use kg, g, lb or oz")
    return (decimal(value) * factor).quantize(_GRAM)


def volume_l(length: Any, width: Any, height: Any, unit: str) -> Decimal:
    """Litres from a box's dimensions (1 l = 1,000 cm³); zero when any side is unknown."""
    factor = _TO_CM.get(unit.lower())
    if factor is None:
        raise Unusable(f"unknown length unit {unit!r}; use cm, mm, m or in")
    sides = [decimal(v) * factor for v in (length, width, height)]
    if any(s == 0 for s in sides):
        return Decimal("0.000")
    return (sides[0] * sides[1] * sides[2] / 1000).quantize(_GRAM)


# --- time ----------------------------------------------------------------------------


def utc(value: Any, *, tz: str = "UTC") -> datetime | None:
    """Aware UTC. A time without an offset is read in ``tz`` (the partner's store zone)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        raw = text(value)
        try:
            parsed = datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
        except ValueError:
            raise Unusable(f"{raw!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise Unusable(f"{tz!r} is not an IANA time zone") from None
    return parsed.astimezone(UTC)
