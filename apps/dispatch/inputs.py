"""Write contracts of the dispatch API, validated with pydantic.

Pydantic validates an order in microseconds, which is what lets the bulk endpoint
keep pace with a raw ``bulk_create`` (see bench/ingest.py); drf-spectacular reads
these models for the OpenAPI schema, so the contract is written once.

Types are strict: a quantity sent as ``"3"`` is an error, not a guess. Unknown
fields are errors too, so a partner's typo fails loudly instead of being dropped.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from apps.common.exceptions import ValidationFailed

from .models import FailureReason, GeocodeConfidence, PodRequirement, VehicleType


def _aware(value: datetime) -> datetime:
    """Require an offset, and store UTC: PostgreSQL accepts offsets only up to 15:59,
    and an offset can push a date past year 9999."""
    if value.tzinfo is None:
        raise ValueError("must include a timezone offset, e.g. 2026-11-21T09:00:00+01:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of the supported date range") from None


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin") from None
    return value


def _local_time(value: Any) -> Any:
    # Shifts and opening hours are wall-clock times in the hub's zone: an offset
    # would make them mean something else in winter, and seconds-since-midnight
    # integers are too easy to send by mistake.
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError("must be a local time without a UTC offset, e.g. 08:30")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a time such as 08:30")
    if value.endswith(("Z", "z")) or "+" in value or value.count("-"):
        raise ValueError("must be a local time without a UTC offset, e.g. 08:30")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# Database ids are signed 64-bit; anything else cannot name a row.
Id = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
LocalTime = Annotated[time, BeforeValidator(_local_time),
                      WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
                                      "description": "Local wall-clock time, e.g. 08:30 (no UTC offset)"})]
Latitude = Annotated[float, Field(ge=-90, le=90, strict=False), AfterValidator(float)]
Longitude = Annotated[float, Field(ge=-180, le=180, strict=False), AfterValidator(float)]
Text = Annotated[StrictStr, Field(max_length=200)]
# The schema says "number" because that is what is accepted: a JSON string is refused.
Amount = Annotated[Decimal, Field(ge=0, le=100000, max_digits=12, decimal_places=3),
                   WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100000, "multipleOf": 0.001})]
# Capacities are stored to two decimals; a third would be silently rounded.
Capacity = Annotated[Decimal, Field(ge=0, le=100000, max_digits=9, decimal_places=2),
                     WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100000, "multipleOf": 0.01})]
Country = Annotated[StrictStr, Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$"), AfterValidator(str.upper)]
SkillList = Annotated[list[Annotated[StrictStr, Field(min_length=1, max_length=40)]], Field(max_length=20)]


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _numbers_only(value: Any) -> Any:
    # JSON numbers only: pydantic would otherwise accept "1.5" for a Decimal.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError("must be a number")
    return value


MAX_ORDER_TOTAL = 10_000_000


class ItemIn(Contract):
    sku: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    description: Text = ""
    quantity: Annotated[StrictInt, Field(ge=1, le=10000)] = 1
    weight_kg: Amount = Decimal(0)
    volume_l: Amount = Decimal(0)

    _numbers = field_validator("weight_kg", "volume_l", mode="before")(_numbers_only)


class _OrderChecks(Contract):
    """Field checks shared by the create contract and the partial update."""

    _coords = field_validator("lat", "lng", mode="before", check_fields=False)(
        lambda v: v if v is None else _numbers_only(v)
    )

    @field_validator("pod_requirements", check_fields=False)
    @classmethod
    def _unique_requirements(cls, value: list[PodRequirement] | None) -> list[PodRequirement] | None:
        return list(dict.fromkeys(value)) if value is not None else value

    @field_validator("items", check_fields=False)
    @classmethod
    def _storable_totals(cls, value: list[ItemIn] | None) -> list[ItemIn] | None:
        # Order totals are stored to two decimals below 10^7 (kg, litres).
        for unit in ("weight_kg", "volume_l"):
            if value and sum(getattr(i, unit) * i.quantity for i in value) >= MAX_ORDER_TOTAL:
                raise ValueError(f"the items' total {unit} must be below {MAX_ORDER_TOTAL:,}")
        return value

    @field_validator("custom_fields", check_fields=False)
    @classmethod
    def _small_custom_fields(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > 50:
            raise ValueError("at most 50 custom fields")
        return value


class OrderFields(_OrderChecks):
    """The fields an order is created with (the partial update derives from them)."""

    reference: Annotated[StrictStr, Field(max_length=128)] = ""
    hub: Id | None = None
    customer_name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    customer_phone: Annotated[StrictStr, Field(max_length=32)] = ""
    customer_email: Annotated[StrictStr, Field(max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")] = ""
    address_line1: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    address_line2: Text = ""
    city: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    postal_code: Annotated[StrictStr, Field(max_length=20)] = ""
    region: Annotated[StrictStr, Field(max_length=100)] = ""
    country: Country
    lat: Latitude | None = None
    lng: Longitude | None = None
    geocode_confidence: GeocodeConfidence | None = None
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    service_time_s: Annotated[StrictInt, Field(ge=0, le=4 * 3600)] = 180
    instructions: Annotated[StrictStr, Field(max_length=2000)] = ""
    priority: Annotated[StrictInt, Field(ge=0, le=3)] = 1
    pod_requirements: Annotated[list[PodRequirement], Field(max_length=6)] = []
    pod_min_photos: Annotated[StrictInt, Field(ge=0, le=20, description="Photos a delivery must carry (0: as policy)")] = 0
    pod_min_age: Annotated[StrictInt, Field(ge=0, le=25, description="Age the recipient must prove (0: no check)")] = 0
    required_skills: SkillList = []
    custom_fields: dict[str, Any] = {}
    items: Annotated[list[ItemIn], Field(max_length=500)] = []

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_order_consistency(self.lat, self.lng, self.window_start, self.window_end)
        if self.geocode_confidence is None:
            self.geocode_confidence = GeocodeConfidence.EXACT if self.lat is not None else GeocodeConfidence.NONE
        return self


def check_order_consistency(lat: float | None, lng: float | None,
                            start: datetime | None, end: datetime | None) -> None:
    if (lat is None) != (lng is None):
        raise ValueError("lat and lng must be given together")
    if start is not None and end is not None and end <= start:
        raise ValueError("window_end must be after window_start")


class OrderIn(OrderFields):
    source: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")] = "api"
    external_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]


def _partial(model: type[BaseModel], name: str, doc: str) -> type[BaseModel]:
    """``model`` with every field optional to send, and validated the same when sent.

    An explicit null is accepted only where ``model`` accepts None: the default is
    None but defaults are not validated, so omitting a field is fine and sending
    ``"customer_name": null`` is still an error, never a NULL in the database.
    """
    fields: dict[str, Any] = {
        field_name: (Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation, None)
        for field_name, info in model.model_fields.items()
    }
    return create_model(name, __base__=_OrderChecks, __doc__=doc, **fields)


OrderPatch = _partial(OrderFields, "OrderPatch", "Partial update. Every field is optional; only the ones sent change.")


class BulkOrdersIn(Contract):
    orders: Annotated[list[OrderIn], Field(min_length=1)]


class CancelIn(Contract):
    reason: Annotated[StrictStr, Field(max_length=500)] = ""


class OpeningHours(Contract):
    """Per weekday, a list of [open, close] pairs in the hub's local time."""

    mon: list[tuple[LocalTime, LocalTime]] = []
    tue: list[tuple[LocalTime, LocalTime]] = []
    wed: list[tuple[LocalTime, LocalTime]] = []
    thu: list[tuple[LocalTime, LocalTime]] = []
    fri: list[tuple[LocalTime, LocalTime]] = []
    sat: list[tuple[LocalTime, LocalTime]] = []
    sun: list[tuple[LocalTime, LocalTime]] = []

    def as_json(self) -> dict[str, list[list[str]]]:
        """Stored form: open days only, times as HH:MM."""
        return {
            day: [[opens.strftime("%H:%M"), closes.strftime("%H:%M")] for opens, closes in spans]
            for day, spans in self.model_dump().items() if spans
        }

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for day, spans in self.model_dump().items():
            for opens, closes in spans:
                if closes <= opens:
                    raise ValueError(f"{day}: closing time must be after opening time")
        return self


class HubIn(Contract):
    name: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    code: Annotated[StrictStr, Field(min_length=1, max_length=20)]
    timezone: Annotated[StrictStr, AfterValidator(_timezone),
                        Field(description="IANA time zone, e.g. Europe/Berlin", examples=["Europe/Berlin"])]
    address_line1: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    address_line2: Text = ""
    city: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    postal_code: Annotated[StrictStr, Field(max_length=20)] = ""
    region: Annotated[StrictStr, Field(max_length=100)] = ""
    country: Country
    lat: Latitude
    lng: Longitude
    opening_hours: OpeningHours = OpeningHours()

    _coords = field_validator("lat", "lng", mode="before")(_numbers_only)


class VehicleIn(Contract):
    name: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    plate: Annotated[StrictStr, Field(max_length=20)] = ""
    type: VehicleType = VehicleType.VAN
    capacity_weight_kg: Capacity
    capacity_volume_l: Capacity
    capacity_parcels: Annotated[StrictInt, Field(ge=0, le=100000)]
    skills: SkillList = []
    home_hub: Id | None = None
    active: StrictBool = True

    _numbers = field_validator("capacity_weight_kg", "capacity_volume_l", mode="before")(_numbers_only)


class DriverIn(Contract):
    username: Annotated[StrictStr, Field(min_length=3, max_length=150, pattern=r"^[\w.@+-]+$")]
    password: Annotated[StrictStr, Field(min_length=10, max_length=128)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    phone: Annotated[StrictStr, Field(max_length=32, pattern=r"^$|^\+[1-9]\d{6,14}$")] = ""
    shift_start: LocalTime
    shift_end: LocalTime
    home_hub: Id | None = None
    current_vehicle: Id | None = None

    @field_validator("shift_end")
    @classmethod
    def _shift(cls, value: time, info: ValidationInfo) -> time:
        start = info.data.get("shift_start")
        if start is not None and value <= start:
            raise ValueError("shift_end must be after shift_start")
        return value


class DriverPatch(Contract):
    name: Annotated[StrictStr, Field(min_length=1, max_length=120)] | None = None
    phone: Annotated[StrictStr, Field(max_length=32, pattern=r"^$|^\+[1-9]\d{6,14}$")] | None = None
    shift_start: LocalTime | None = None
    shift_end: LocalTime | None = None
    home_hub: Id | None = None
    current_vehicle: Id | None = None
    active: StrictBool | None = None


class DutyIn(Contract):
    on_duty: StrictBool


class RouteIn(Contract):
    hub: Id
    date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), WithJsonSchema({"type": "string", "format": "date"})]
    name: Annotated[StrictStr, Field(max_length=120)] = ""
    driver: Id | None = None
    vehicle: Id | None = None
    planned_start: AwareDatetime | None = None
    orders: Annotated[list[Id], Field(max_length=500)] = []

    @field_validator("date")
    @classmethod
    def _real_date(cls, value: str) -> str:
        from datetime import date

        date.fromisoformat(value)
        return value


class RoutePatch(Contract):
    name: Annotated[StrictStr, Field(max_length=120)] | None = None
    driver: Id | None = None
    vehicle: Id | None = None
    planned_start: AwareDatetime | None = None


class RouteStopsIn(Contract):
    """The new order of the route's open stops, as order ids. Orders not on the route
    are added; open stops whose order is missing are removed."""

    orders: Annotated[list[Id], Field(max_length=500)]
    expected_version: StrictInt | None = None


_OCCURRED_AT = ("When the driver did it, by the device's clock, for an action queued offline and synced later "
                "(default: now). At most 2 minutes in the future.")


class StopArriveIn(Contract):
    occurred_at: Annotated[AwareDatetime | None, Field(description=_OCCURRED_AT)] = None


class StopFailIn(Contract):
    reason: FailureReason
    notes: Annotated[StrictStr, Field(max_length=2000)] = ""
    occurred_at: Annotated[AwareDatetime | None, Field(description=_OCCURRED_AT)] = None


class StopCompleteIn(Contract):
    notes: Annotated[StrictStr, Field(max_length=2000)] = ""
    occurred_at: Annotated[AwareDatetime | None, Field(description=_OCCURRED_AT)] = None


class ApiClientIn(Contract):
    name: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    scopes: Annotated[list[StrictStr], Field(min_length=1)]
    order_source: Annotated[StrictStr, Field(max_length=64, description=(
        "Bind the key to one shipper: it creates orders with this source only and sees only those orders "
        "and its own webhook endpoints (scopes: orders and webhooks only)"))] = ""


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "non_field_errors"


def errors_to_fields(exc: ValidationError, prefix: str = "") -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if p not in ("function-after", "function-before"))
        path = _field_path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path != "non_field_errors" else prefix
        message = error["msg"].removeprefix("Value error, ")
        fields.setdefault(path, []).append(message)
    return fields


def _nul_paths(value: Any, path: str = "") -> list[str]:
    """Where a NUL character hides: PostgreSQL cannot store one in text or JSON."""
    if isinstance(value, str):
        return [path or "non_field_errors"] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_paths(k, path) + _nul_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_paths(v, f"{path}.{i}" if path else str(i))]
    return []


def parse[T: BaseModel](model: type[T], data: Any) -> T:
    """Validate request data against a contract, or raise the API's 400."""
    if not isinstance(data, dict):
        raise ValidationFailed({"non_field_errors": ["Expected a JSON object."]})
    if nul := _nul_paths(data):
        raise ValidationFailed({p: ["must not contain NUL characters"] for p in nul})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(errors_to_fields(exc)) from None
