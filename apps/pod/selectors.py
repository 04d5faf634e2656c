"""POD reads, scoped to the actor's organization (drivers: their own routes' stops)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.accounts.actor import Actor
from apps.common.exceptions import ValidationFailed
from apps.dispatch import selectors as dispatch_selectors
from apps.dispatch.models import Order, Stop

from .models import DispatchException, PodMedia, PodPolicy, ProofOfDelivery
from .requirements import requirements_for
from .signing import sign_media


def pod_list(*, actor: Actor, params: dict[str, Any] | None = None) -> QuerySet[ProofOfDelivery]:
    params = params or {}
    errors: dict[str, list[str]] = {}
    qs = (ProofOfDelivery.objects.filter(org=actor.org)
          .select_related("stop", "order", "driver", "signature")
          .prefetch_related(Prefetch("photos", queryset=PodMedia.objects.order_by("id"))))
    if actor.is_driver:
        qs = qs.filter(stop__in=dispatch_selectors.stop_list(actor=actor))
    for name in ("order", "stop"):
        raw = params.get(name)
        if raw in (None, ""):
            continue
        if not (raw.isascii() and raw.isdigit()) or int(raw) > dispatch_selectors.MAX_ID:
            errors[name] = ["Must be a positive integer id."]
            continue
        qs = qs.filter(**{f"{name}_id": int(raw)})
    if errors:
        raise ValidationFailed(errors, message="The query has invalid filters.")
    return qs


def media_urls(media: PodMedia, *, actor: Actor) -> dict[str, str]:
    """Signed URLs for one file, for members of the actor's organization."""
    audience = f"org:{actor.org.pk}"
    return {rendition: sign_media(media_id=media.pk, rendition=rendition, audience=audience)
            for rendition in ("display", "thumb", "original")}


def exception_list(*, actor: Actor, open_only: bool = True) -> QuerySet[DispatchException]:
    qs = DispatchException.objects.filter(org=actor.org).select_related("stop", "order")
    return qs.filter(resolved_at__isnull=True) if open_only else qs


def route_requirements(*, actor: Actor, route_id: int) -> list[dict[str, Any]]:
    """What each stop of a route needs to be completed: the PWA enforces it offline."""
    stops = (dispatch_selectors.stop_list(actor=actor).filter(route_id=route_id)
             .select_related("order").order_by("sequence", "id"))
    stops_list: list[Stop] = list(stops)
    sources = {s.order.source for s in stops_list}
    policies_by_source = {p.source: p for p in PodPolicy.objects.filter(org=actor.org, source__in=["", *sources])}
    return [{"stop": s.pk, "order": s.order_id,
             "rules": requirements_for(s.order, policies=policies_by_source).as_dict()} for s in stops_list]


def tracking_shares_photos(*, org_id: int) -> bool:
    return PodPolicy.objects.filter(org_id=org_id, source="", share_photos_with_tracking=True).exists()


def tracking_pod(*, order: Order) -> ProofOfDelivery | None:
    """The proof behind the order's delivery: the first POD of its succeeded stop."""
    return (ProofOfDelivery.objects.filter(order=order, stop__outcome="succeeded", org_id=order.org_id)
            .order_by("id").first())


def pod_display_url(*, order: Order) -> str | None:
    """The tracking page's proof of delivery (apps/tracking/pod.py): a signed, expiring
    link to the display copy of the delivery's first photo, or None when the order has
    none or its organization does not share photos with customers. Never the original."""
    if not tracking_shares_photos(org_id=order.org_id):
        return None
    pod = tracking_pod(order=order)
    photo = pod.photos.order_by("id").first() if pod else None
    if photo is None or photo.purged_at is not None:
        return None
    return sign_media(media_id=photo.pk, rendition="display", audience=f"track:{order.pk}")
