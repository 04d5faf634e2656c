"""Write contracts of the planning API (pydantic, like apps/dispatch/inputs.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictStr, WithJsonSchema, field_validator

from apps.dispatch.inputs import Contract, Id

DateStr = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), WithJsonSchema({"type": "string", "format": "date"})]


class PlanIn(Contract):
    hub: Id
    date: DateStr
    drivers: Annotated[list[Id], Field(max_length=500)] = []
    orders: Annotated[list[Id], Field(max_length=5000)] = []
    time_limit_s: Annotated[float, Field(ge=0.5, le=120)] = 5.0

    @field_validator("date")
    @classmethod
    def _real_date(cls, value: str) -> str:
        # A delivery day, not any calendar date: year 1 overflows once moved to UTC.
        if not date(2000, 1, 1) <= date.fromisoformat(value) <= date(2999, 12, 31):
            raise ValueError("must be a delivery day between 2000-01-01 and 2999-12-31")
        return value


class ExceptionIn(Contract):
    kind: Literal["failed_delivery", "vehicle_breakdown", "driver_unavailable", "urgent_order", "late_risk",
                  "order_cancelled", "order_changed"]
    route: Id | None = None
    driver: Id | None = None
    order: Id | None = None
    stop: Id | None = None
    notes: Annotated[StrictStr, Field(max_length=1000)] = ""


class PinIn(Contract):
    stop: Id
    kind: Literal["driver", "sequence", "none"]


class PolicyIn(Contract):
    """A partial update: send only what changes; null is not a value any of these can take."""

    auto_apply: StrictBool | None = None
    failed_delivery: Literal["reattempt", "return"] | None = None
    replan_time_limit_s: Annotated[float, Field(ge=0.2, le=60)] | None = None
    coalesce_s: Annotated[float, Field(ge=0, le=30)] | None = None

    @field_validator("auto_apply", "failed_delivery", "replan_time_limit_s", "coalesce_s", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:
            raise ValueError("must not be null")
        return value
