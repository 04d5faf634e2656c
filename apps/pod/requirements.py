"""What a completion must carry. The organization's default policy, the partner's
(by order source) and the order's own ``pod_requirements`` are merged; the strictest
value wins, so a partner can ask for more than the default but never for less.

The PWA applies the same rules before it lets a driver complete (it receives them as
``pod_rules`` on each stop), and the server checks them again: a completion without
them is a 422 listing every missing piece."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

from apps.common.exceptions import BusinessRuleViolation
from apps.dispatch.models import Order, PodRequirement

from .models import PodPolicy


@dataclass(frozen=True)
class Requirements:
    min_photos: int = 0
    signature: bool = False
    recipient_name: bool = False
    notes: bool = False
    pin: bool = False
    barcode: bool = False
    min_age: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def any(self) -> bool:
        return any(self.as_dict().values())


def requirements_for(order: Order, policies: dict[str, PodPolicy] | None = None) -> Requirements:
    """``policies`` (source -> policy) may be passed in when checking many orders of one org."""
    if policies is None:
        policies = {p.source: p for p in PodPolicy.objects.filter(org_id=order.org_id, source__in=["", order.source])}
    applicable = [p for key, p in policies.items() if key in ("", order.source)]
    listed = set(order.pod_requirements or [])

    def flag(name: str, requirement: str) -> bool:
        return requirement in listed or any(getattr(p, name) for p in applicable)

    return Requirements(
        min_photos=max([1 if PodRequirement.PHOTO in listed else 0, order.pod_min_photos,
                        *(p.min_photos for p in applicable)]),
        signature=flag("signature", PodRequirement.SIGNATURE),
        recipient_name=flag("recipient_name", PodRequirement.RECIPIENT_NAME),
        notes=flag("notes", PodRequirement.NOTES),
        pin=flag("pin", PodRequirement.PIN),
        barcode=flag("barcode", PodRequirement.BARCODE),
        min_age=max([order.pod_min_age, *(p.min_age for p in applicable)]),
    )


def delivery_pin(order: Order) -> str:
    """The four-digit code the customer gives the driver. Derived, not stored: a keyed
    hash of the order, so the server can check it and tell it to the customer
    (tracking page, notifications) while the driver's app never learns it."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"pod-pin:{order.org_id}:{order.pk}".encode(), hashlib.sha256)
    return f"{int.from_bytes(digest.digest()[:4], 'big') % 10_000:04d}"


@dataclass(frozen=True)
class Captured:
    """What the driver captured, as the requirement check sees it."""

    photos: int = 0
    signature: bool = False
    recipient_name: str = ""
    notes: str = ""
    pin: str = ""
    barcode: str = ""
    age_verified: bool = False


def missing(required: Requirements, captured: Captured, *, order: Order) -> dict[str, str]:
    """Each requirement the capture does not meet, with what to do about it."""
    out: dict[str, str] = {}
    if captured.photos < required.min_photos:
        out["photos"] = f"Take {required.min_photos} photo{'s' if required.min_photos > 1 else ''} " \
                        f"({captured.photos} attached)."
    if required.signature and not captured.signature:
        out["signature"] = "The recipient's signature is required."
    if required.recipient_name and not captured.recipient_name.strip():
        out["recipient_name"] = "The recipient's name is required."
    if required.notes and not captured.notes.strip():
        out["notes"] = "A note is required."
    if required.pin:
        if not captured.pin:
            out["pin"] = "The customer's delivery PIN is required."
        elif not hmac.compare_digest(captured.pin, delivery_pin(order)):
            out["pin"] = "The PIN does not match this order's delivery PIN."
    if required.barcode and not captured.barcode.strip():
        out["barcode"] = "Scan the parcel's barcode."
    if required.min_age and not captured.age_verified:
        out["age_verified"] = f"Check the recipient's ID: they must be at least {required.min_age}."
    return out


def require(required: Requirements, captured: Captured, *, order: Order) -> None:
    gaps = missing(required, captured, order=order)
    if gaps:
        raise BusinessRuleViolation(
            f"This delivery needs more proof: {', '.join(gaps)}.",
            code="pod_requirements_missing", missing=gaps, required=required.as_dict(),
        )
