"""An order on its way in: fields gathered by an adapter, with every problem found.

Adapters fill a ``Draft`` through the normalizers; ``finish`` adds coordinates from the
geocoder and validates the result against the same contract the REST API uses, so an
order arriving by webhook obeys exactly the rules of one posted by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from apps.dispatch.inputs import OrderIn, errors_to_fields
from apps.dispatch.models import GeocodeConfidence

from .geocoding import AddressQuery, geocoder
from .normalize import Unusable


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    # Blocking problems stop the order being applied; the others are warnings that
    # still put the message in front of a person.
    blocking: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "blocking": self.blocking}


class Action:
    UPSERT = "upsert"
    CANCEL = "cancel"
    IGNORE = "ignore"
    # Shopify fulfillment orders (shopify/fulfillment.py): changes to an order we hold.
    HOLD = "hold"  # a person must look at the order before it is delivered
    NOTE = "note"  # recorded against the order; nothing to change
    CANCEL_REQUEST = "cancel_request"  # cancel unless a driver already has it


@dataclass
class Draft:
    action: str = Action.UPSERT
    external_id: str = ""
    source_updated_at: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    note: str = ""
    order: OrderIn | None = None
    # Fulfillment-order webhooks name the fulfillment order, not the order.
    fulfillment_order_id: str = ""
    successors: list[str] = field(default_factory=list)

    def put(self, name: str, normalize: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Set ``name`` to ``normalize(*args)``, or record why it could not be."""
        try:
            value = normalize(*args, **kwargs)
        except Unusable as exc:
            self.problems.append(Problem(name, str(exc)))
            return None
        self.fields[name] = value
        return value

    def soft(self, name: str, normalize: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Like ``put``, but a bad value is dropped with a warning instead of blocking the order."""
        try:
            value = normalize(*args, **kwargs)
        except Unusable as exc:
            self.problems.append(Problem(name, f"{exc}; left empty", blocking=False))
            return None
        self.fields[name] = value
        return value

    def problem(self, name: str, message: str, *, blocking: bool = True) -> None:
        self.problems.append(Problem(name, message, blocking))

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]

    @property
    def reason(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)


REQUIRED = ("customer_name", "address_line1", "city", "country")


def finish(draft: Draft, *, source: str, overrides: dict[str, Any] | None = None) -> Draft:
    """Apply a person's corrections, fill coordinates, and validate as the API would."""
    if draft.action != Action.UPSERT:
        return draft
    if overrides:
        fixed = set(overrides)
        draft.problems = [p for p in draft.problems if p.field.split(".")[0] not in fixed]
        draft.fields.update(overrides)
    for name in REQUIRED:
        if not draft.fields.get(name) and not any(p.field == name for p in draft.problems):
            draft.problem(name, "is missing")
    fields = draft.fields
    if fields.get("lat") is None and fields.get("lng") is None and not draft.blocking:
        query = AddressQuery(line1=fields.get("address_line1", ""), city=fields.get("city", ""),
                             postal_code=fields.get("postal_code", ""), region=fields.get("region", ""),
                             country=fields.get("country", ""))
        found = geocoder().geocode(query)
        if found is None:
            draft.problem("lat", f"no coordinates, and the {geocoder().name} geocoder could not place the address; "
                          "the order is created unplaced", blocking=False)
        else:
            fields.update(lat=found.lat, lng=found.lng, geocode_confidence=found.confidence)
    elif fields.get("lat") is not None:
        fields.setdefault("geocode_confidence", GeocodeConfidence.EXACT)
    if draft.blocking:
        return draft
    try:
        draft.order = OrderIn.model_validate({**fields, "source": source, "external_id": draft.external_id})
    except ValidationError as exc:
        for path, messages in errors_to_fields(exc).items():
            for message in messages:
                draft.problem(path, message)
    return draft
