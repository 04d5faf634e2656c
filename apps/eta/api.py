"""``GET /api/v1/eta-accuracy/``: predicted against actual arrival, per organization and route."""

from __future__ import annotations

import zoneinfo
from datetime import date, timedelta

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import actor_for_request
from apps.common.exceptions import ValidationFailed

from .selectors import eta_accuracy

MAX_DAYS = 31

_STATS = inline_serializer("EtaErrorStats", {
    "count": serializers.IntegerField(),
    "mean_abs_s": serializers.FloatField(allow_null=True, help_text="Mean absolute error, seconds"),
    "p90_abs_s": serializers.FloatField(allow_null=True, help_text="90th percentile of the absolute error, seconds"),
})
_HORIZONS = {"first": _STATS, "departure": _STATS}


def _date(raw: str | None, name: str, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed({name: ["Use a date like 2026-11-23."]}) from None


class EtaAccuracyView(APIView):
    """How close the ETAs were to the actual arrivals, at two horizons: ``first`` (the
    first ETA once the route was dispatched) and ``departure`` (the ETA when the driver
    set off towards the stop). Routes dated ``from``..``to`` (default: today in the
    organization's time zone; at most 31 days)."""

    scope_resource = "routes"

    @extend_schema(
        parameters=[OpenApiParameter("from", str, description="First route date, YYYY-MM-DD"),
                    OpenApiParameter("to", str, description="Last route date, YYYY-MM-DD")],
        responses=inline_serializer("EtaAccuracy", {
            "date_from": serializers.DateField(), "date_to": serializers.DateField(),
            "organization": inline_serializer("EtaAccuracyOrg", _HORIZONS),
            "routes": inline_serializer("EtaAccuracyRoute", {
                "route_id": serializers.IntegerField(), "name": serializers.CharField(),
                "date": serializers.DateField(), "driver": serializers.CharField(allow_null=True), **_HORIZONS,
            }, many=True),
        }),
    )
    def get(self, request: Request) -> Response:
        actor = actor_for_request(request)
        from django.utils import timezone

        today = timezone.now().astimezone(zoneinfo.ZoneInfo(actor.org.timezone)).date()
        date_to = _date(request.query_params.get("to"), "to", today)
        date_from = _date(request.query_params.get("from"), "from", date_to)
        if date_from > date_to:
            raise ValidationFailed({"from": ["Must not be after 'to'."]})
        if date_to - date_from > timedelta(days=MAX_DAYS - 1):
            raise ValidationFailed({"from": [f"At most {MAX_DAYS} days at a time."]})
        return Response(eta_accuracy(org=actor.org, date_from=date_from, date_to=date_to))
