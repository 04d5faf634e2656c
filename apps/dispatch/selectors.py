"""Dispatch reads. Every queryset starts from the actor's organization; drivers are
narrowed further to their own routes. An object outside the scope is simply
absent, so the API answers 404 rather than 403 and leaks nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from apps.accounts.actor import Actor
from apps.common.exceptions import ValidationFailed

from .models import (
    Driver,
    Hub,
    Order,
    OrderItem,
    OrderOutcome,
    OrderState,
    Route,
    RouteStatus,
    Stop,
    StopState,
    Vehicle,
)


def hub_list(*, actor: Actor) -> QuerySet[Hub]:
    return Hub.objects.filter(org=actor.org)


def vehicle_list(*, actor: Actor) -> QuerySet[Vehicle]:
    return Vehicle.objects.filter(org=actor.org)


def driver_list(*, actor: Actor) -> QuerySet[Driver]:
    qs = Driver.objects.filter(org=actor.org).select_related("user")
    if actor.is_driver:
        qs = qs.filter(pk=actor.driver_id)
    return qs


def _choice(params: dict[str, Any], name: str, choices: list[str], errors: dict[str, list[str]]) -> list[str]:
    raw = params.get(name)
    if not raw:
        return []
    values = [v for v in raw.split(",") if v]
    bad = [v for v in values if v not in choices]
    if bad:
        errors[name] = [f"Unknown value(s) {', '.join(bad)}; expected one of {', '.join(c for c in choices if c)}."]
    return values


MAX_ID = 2**63 - 1


def _datetime(params: dict[str, Any], name: str, errors: dict[str, list[str]]) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        errors[name] = ["Use an ISO 8601 date-time with offset, e.g. 2026-11-21T00:00:00+01:00."]
        return None
    if value.tzinfo is None:
        errors[name] = ["Include a timezone offset."]
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        errors[name] = ["Out of the supported date range."]
        return None


def _int(params: dict[str, Any], name: str, errors: dict[str, list[str]]) -> int | None:
    """An id filter: ASCII digits naming a possible row (signed 64-bit)."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        errors[name] = ["Must be a positive integer id."]
        return None
    return int(raw)


def _text(params: dict[str, Any], name: str, errors: dict[str, list[str]]) -> str:
    raw = params.get(name, "")
    if "\x00" in raw:
        errors[name] = ["Must not contain NUL characters."]
        return ""
    return raw


def order_list(*, actor: Actor, params: dict[str, Any] | None = None) -> QuerySet[Order]:
    """Orders, filtered by query parameters (validated; a bad value is a 400)."""
    params = params or {}
    errors: dict[str, list[str]] = {}
    qs = Order.objects.filter(org=actor.org).prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))
    if actor.order_source:
        qs = qs.filter(source=actor.order_source)  # a shipper's key sees its own orders only
    if states := _choice(params, "state", list(OrderState.values), errors):
        qs = qs.filter(state__in=states)
    if outcomes := _choice(params, "outcome", [v for v in OrderOutcome.values if v], errors):
        qs = qs.filter(outcome__in=outcomes)
    if source := _text(params, "source", errors):
        qs = qs.filter(source=source)
    if external_id := _text(params, "external_id", errors):
        qs = qs.filter(external_id=external_id)
    if (hub := _int(params, "hub", errors)) is not None:
        qs = qs.filter(hub_id=hub)
    if (route := _int(params, "route", errors)) is not None:
        qs = qs.filter(stops__route_id=route).distinct()
    if (window_from := _datetime(params, "window_from", errors)) is not None:
        qs = qs.filter(window_end__gte=window_from)
    if (window_to := _datetime(params, "window_to", errors)) is not None:
        qs = qs.filter(window_start__lte=window_to)
    if (created_after := _datetime(params, "created_after", errors)) is not None:
        qs = qs.filter(created_at__gt=created_after)
    if q := _text(params, "q", errors).strip():
        qs = qs.filter(
            Q(customer_name__icontains=q) | Q(external_id__icontains=q) | Q(reference__icontains=q)
            | Q(address_line1__icontains=q) | Q(city__icontains=q)
        )
    if errors:
        raise ValidationFailed(errors, message="The query has invalid filters.")
    return qs


def route_list(*, actor: Actor, params: dict[str, Any] | None = None) -> QuerySet[Route]:
    params = params or {}
    errors: dict[str, list[str]] = {}
    qs = Route.objects.filter(org=actor.org).select_related("driver", "vehicle", "hub")
    if actor.is_driver:
        qs = qs.filter(driver_id=actor.driver_id).exclude(status=RouteStatus.DRAFT)
    if raw_date := params.get("date"):
        try:
            qs = qs.filter(date=date.fromisoformat(raw_date))
        except ValueError:
            errors["date"] = ["Use YYYY-MM-DD."]
    if statuses := _choice(params, "status", list(RouteStatus.values), errors):
        qs = qs.filter(status__in=statuses)
    if (driver := _int(params, "driver", errors)) is not None:
        qs = qs.filter(driver_id=driver)
    if errors:
        raise ValidationFailed(errors, message="The query has invalid filters.")
    return qs


def route_stops(*, route: Route) -> QuerySet[Stop]:
    return route.stops.select_related("order").order_by("sequence", "id")


def stop_list(*, actor: Actor, params: dict[str, Any] | None = None) -> QuerySet[Stop]:
    params = params or {}
    errors: dict[str, list[str]] = {}
    qs = Stop.objects.filter(org=actor.org).select_related("order", "order__preferences", "route")
    if actor.is_driver:
        qs = qs.filter(route__driver_id=actor.driver_id).exclude(route__status=RouteStatus.DRAFT)
    if (route := _int(params, "route", errors)) is not None:
        qs = qs.filter(route_id=route)
    if raw_date := params.get("date"):
        try:
            qs = qs.filter(route__date=date.fromisoformat(raw_date))
        except ValueError:
            errors["date"] = ["Use YYYY-MM-DD."]
    if (order := _int(params, "order", errors)) is not None:
        qs = qs.filter(order_id=order)
    if states := _choice(params, "state", list(StopState.values), errors):
        qs = qs.filter(state__in=states)
    if errors:
        raise ValidationFailed(errors, message="The query has invalid filters.")
    return qs
