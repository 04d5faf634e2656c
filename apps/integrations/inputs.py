"""Write contracts of the integrations API (pydantic, like apps/dispatch/inputs.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictStr

from apps.dispatch.inputs import Contract, Id, OrderFields

from .models import ConnectionKind, Taxonomy

Name = Annotated[StrictStr, Field(min_length=1, max_length=120)]
# The order fields a person may correct on a message before reprocessing it.
FIXABLE = frozenset(OrderFields.model_fields) - {"hub"}


class ConnectionOptions(Contract):
    default_country: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    weight_unit: Literal["kg", "g", "lb", "oz"] | None = None
    dimension_unit: Literal["cm", "mm", "m", "in"] | None = None
    timezone: Annotated[StrictStr, Field(max_length=64)] | None = None
    require_paid: bool | None = Field(None, description="Shopify/WooCommerce: deliver only paid orders "
                                      "(an unpaid order is recorded and ignored until its paid update)")
    raw_retention_days: int | None = Field(None, ge=1, le=3650, strict=True, description=(
        "Days the raw body and headers of this connection's processed messages are kept (personal data); "
        "default INBOUND_RAW_RETENTION_DAYS. The audit record (topic, time, status, body hash) stays."))


class ConnectionIn(Contract):
    kind: ConnectionKind
    name: Name
    store: Annotated[StrictStr, Field(max_length=200)] = ""
    source: Annotated[StrictStr, Field(max_length=64, pattern=r"^$|^[A-Za-z0-9_.:\-]+$")] = ""
    secret: Annotated[StrictStr, Field(max_length=200)] = Field(
        "", description="The partner's signing secret; leave empty to have one generated (generic connections)")
    options: ConnectionOptions = ConnectionOptions()
    mapping: Id | None = None


class RotateIn(Contract):
    secret: Annotated[StrictStr, Field(max_length=200)] = ""
    grace_hours: Annotated[int, Field(ge=0, le=24 * 7)] = 24


class FixIn(Contract):
    overrides: Annotated[dict[str, Any], Field(min_length=1, max_length=30, description=(
        "Order fields to use instead of what the partner sent, e.g. {\"postal_code\": \"10119\"}"))]


class BulkReprocessIn(Contract):
    ids: Annotated[list[Id], Field(min_length=1, max_length=500)]


class MappingIn(Contract):
    name: Name
    spec: dict[str, Any]


class MappingVersionIn(Contract):
    spec: dict[str, Any]


class TryIn(Contract):
    payload: Any = Field(description="A sample body as the partner would send it (JSON)")
    topic: Annotated[StrictStr, Field(max_length=100)] = ""
    spec: dict[str, Any] | None = Field(None, description="A draft mapping to try instead of the saved one")


class EndpointIn(Contract):
    url: Annotated[StrictStr, Field(min_length=8, max_length=500, pattern=r"^https?://")]
    event_types: Annotated[list[Annotated[StrictStr, Field(max_length=64)]], Field(min_length=1, max_length=50)]
    description: Annotated[StrictStr, Field(max_length=200)] = ""
    taxonomy: Taxonomy = Taxonomy.LASTMILE
    status_mapping: Annotated[dict[str, Annotated[StrictStr, Field(max_length=64)]], Field(max_length=100)] = {}


class EndpointPatch(Contract):
    event_types: Annotated[list[Annotated[StrictStr, Field(max_length=64)]], Field(min_length=1, max_length=50)] | None = None
    description: Annotated[StrictStr, Field(max_length=200)] | None = None
    taxonomy: Taxonomy | None = None
    status_mapping: Annotated[dict[str, Annotated[StrictStr, Field(max_length=64)]], Field(max_length=100)] | None = None


class ReplayIn(Contract):
    ids: Annotated[list[Id], Field(max_length=1000)] = []
    status: Literal["dead", "succeeded"] | None = None
    endpoint: Id | None = None
