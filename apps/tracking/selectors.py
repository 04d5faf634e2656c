"""Reads: the latest positions a console shows, and the order behind a tracking token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.dispatch.models import Order

from .models import DriverPosition, TrackingSettings, TrackingToken


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def position_message(position: DriverPosition) -> dict[str, Any]:
    """One entry of a ``positions`` message (docs/realtime.md)."""
    return {
        "driver_id": position.driver_id,
        "lat": position.lat,
        "lng": position.lng,
        "accuracy_m": position.accuracy_m,
        "speed_mps": position.speed_mps,
        "heading": position.heading,
        "at": _iso(position.device_time),
    }


def latest_positions(*, org_id: int) -> list[dict]:
    """The latest shown position of each active driver of the organization, for the
    console snapshot. Positions older than LOCATION_MAX_AGE_H are left out: they are not
    live any more (yesterday's shift), by the same rule that stops such pings being shown."""
    since = timezone.now() - timedelta(hours=settings.LOCATION_MAX_AGE_H)
    rows = DriverPosition.objects.filter(org_id=org_id, device_time__gte=since, driver__active=True).order_by("driver_id")
    return [position_message(p) for p in rows]


def tracking_order(*, token: str) -> Order | None:
    """The order a customer's tracking token opens; None for an unknown, revoked or expired
    token, or when the order was completed longer ago than the organization's
    ``link_valid_after_completion_h``."""
    if not isinstance(token, str) or not token or len(token) > 64:
        return None
    now = timezone.now()
    row = (
        TrackingToken.objects.filter(token=token, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("order", "order__org", "order__org__tracking_settings")
        .first()
    )
    if row is None:
        return None
    order = row.order
    if order.completed_at is not None:
        # Links die a configurable time after the order is completed (TrackingSettings).
        try:
            hours = order.org.tracking_settings.link_valid_after_completion_h
        except TrackingSettings.DoesNotExist:
            hours = TrackingSettings._meta.get_field("link_valid_after_completion_h").default
        if order.completed_at + timedelta(hours=hours) <= now:
            return None
    return order


def tracking_settings(*, org_id: int) -> TrackingSettings:
    """The organization's tracking settings, or the defaults (unsaved) if it has none."""
    return TrackingSettings.objects.filter(org_id=org_id).first() or TrackingSettings(org_id=org_id)
