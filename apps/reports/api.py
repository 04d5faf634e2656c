"""Reports API: KPIs, a daily series, breakdowns, drill-down to the orders, CSV export.

Every endpoint takes the same filters (``from``, ``to``, ``hub``, ``driver``,
``source``) and needs the ``reports:read`` scope. Figures come from the summary tables;
docs/reports.md defines each one.
"""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import actor_for_request
from apps.accounts.throttling import ApiClientRateThrottle
from apps.common.exceptions import ValidationFailed
from apps.common.pagination import IdCursorPagination
from apps.dispatch.models import Driver, Hub

from . import kpis, selectors
from .csvexport import csv_lines

FILTERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (default: 29 days before `to`)"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (default: today in the organization's time zone)"),
    OpenApiParameter("hub", int, description="Hub id"),
    OpenApiParameter("driver", int, description="Driver id (not for partner keys)"),
    OpenApiParameter("source", str, description="Order source (a partner key is always its own)"),
]
BY = OpenApiParameter("by", str, enum=["hub", "driver", "source", "reason"], required=True)
METRIC = OpenApiParameter("metric", str, enum=list(selectors.DRILL_METRICS),
                          description="Which figure's orders (default: attempts)")
TABLES = ("summary", "daily", "hubs", "drivers", "sources", "reasons", "orders")

_figures = serializers.DictField(help_text="The figures; docs/reports.md defines each")
KpisSerializer = inline_serializer("ReportKpis", {
    "filters": serializers.DictField(), "kpis": _figures, "webhooks": serializers.DictField(),
    "freshness": serializers.DictField(allow_null=True)})
SeriesSerializer = inline_serializer("ReportSeries", {
    "filters": serializers.DictField(), "results": serializers.ListField(child=serializers.DictField())})
BreakdownSerializer = inline_serializer("ReportBreakdown", {
    "filters": serializers.DictField(), "by": serializers.CharField(),
    "results": serializers.ListField(child=serializers.DictField())})
OrdersSerializer = inline_serializer("ReportOrders", {
    "next": serializers.URLField(allow_null=True), "previous": serializers.URLField(allow_null=True),
    "metric": serializers.CharField(), "results": serializers.ListField(child=serializers.DictField())})
OptionsSerializer = inline_serializer("ReportOptions", {
    "hubs": serializers.ListField(child=serializers.DictField()),
    "drivers": serializers.ListField(child=serializers.DictField()),
    "sources": serializers.ListField(child=serializers.CharField()),
    "partner_source": serializers.CharField(allow_null=True)})


class CsvRenderer(BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation; the view streams the body."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return JSONRenderer().render(data)  # only errors get here


class ReportView(APIView):
    scope_resource = "reports"
    throttle_classes = [ApiClientRateThrottle]

    def filters(self, request: Request) -> selectors.ReportFilters:
        return selectors.report_filters(actor=actor_for_request(request), params=request.query_params)


def _by(request: Request) -> str:
    by = request.query_params.get("by", "")
    if by not in ("hub", "driver", "source", "reason"):
        raise ValidationFailed({"by": ["One of: hub, driver, source, reason."]})
    return by


def _reasons(f: selectors.ReportFilters) -> list[dict[str, Any]]:
    figures = selectors.report_kpis(f)["kpis"]
    failed = figures["failed"]
    return [{"key": reason, "label": reason.replace("_", " ").capitalize(), "failed": count,
             "share": round(count / failed, 4) if failed else None}
            for reason, count in sorted(figures["failed_by_reason"].items(), key=lambda kv: -kv[1])]


class KpisView(ReportView):
    @extend_schema(parameters=FILTERS, responses=KpisSerializer,
                   description="Every KPI for the filters, with how fresh the summary is.")
    def get(self, request: Request) -> Response:
        return Response(selectors.report_kpis(self.filters(request)))


class SeriesView(ReportView):
    @extend_schema(parameters=FILTERS, responses=SeriesSerializer, description="The KPIs per day of the range.")
    def get(self, request: Request) -> Response:
        f = self.filters(request)
        return Response({"filters": f.as_dict(), "results": selectors.report_series(f)})


class BreakdownView(ReportView):
    @extend_schema(parameters=[*FILTERS, BY], responses=BreakdownSerializer,
                   description="The KPIs per hub, driver or source; or failed deliveries per reason.")
    def get(self, request: Request) -> Response:
        by = _by(request)
        f = self.filters(request)
        rows = _reasons(f) if by == "reason" else selectors.report_breakdown(f, by=by)
        return Response({"filters": f.as_dict(), "by": by, "results": rows})


class OrdersView(ReportView):
    """The attempts (or cancelled orders) behind a figure, newest first, paginated."""

    @extend_schema(parameters=[*FILTERS, METRIC, OpenApiParameter("page_size", int)], responses=OrdersSerializer)
    def get(self, request: Request) -> Response:
        metric = selectors.drill_metric(request.query_params)
        f = self.filters(request)
        paginator = IdCursorPagination()
        page = paginator.paginate_queryset(selectors.drill_queryset(f, metric), request, view=self)
        response = paginator.get_paginated_response(selectors.drill_rows(f, metric, list(page)))
        response.data["metric"] = metric
        return response


class OptionsView(ReportView):
    @extend_schema(responses=OptionsSerializer, description="What the filters can be set to, for this caller.")
    def get(self, request: Request) -> Response:
        actor = actor_for_request(request)
        own = actor.api_client.order_source if actor.api_client is not None and actor.api_client.order_source else None
        hubs = [{"id": h.pk, "label": f"{h.name} ({h.code})"} for h in Hub.objects.filter(org=actor.org)]
        drivers = [] if own else [{"id": d.pk, "label": d.name} for d in Driver.objects.filter(org=actor.org)]
        sources = [own] if own else selectors.order_sources(actor)
        return Response({"hubs": hubs, "drivers": drivers, "sources": sources, "partner_source": own})


def _flat(figures: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in figures.items() if k not in ("failed_by_reason", "routes")}
    out.update({f"failed_{k}": v for k, v in figures["failed_by_reason"].items()})
    for key in ("routes", "stops_per_route", "stops_per_hour", "planned_km", "planned_drive_h", "tracked_routes",
                "tracked_planned_km", "tracked_planned_drive_h", "actual_km", "actual_drive_h"):
        out[f"route_{key}" if key != "routes" else "routes"] = (figures["routes"] or {}).get(key)
    return out


FLAT_COLUMNS = list(_flat(kpis.finalize({}, {})).keys())
ORDER_COLUMNS = ["order_id", "external_id", "reference", "source", "customer_name", "hub", "driver", "day", "attempt",
                 "outcome", "failure_reason", "window_start", "window_end", "arrival", "completed_at", "punctuality",
                 "eta_error_s", "pod_required", "pod_missing", "stop_id"]


class ExportView(ReportView):
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        parameters=[*FILTERS, OpenApiParameter("table", str, enum=list(TABLES), required=True), METRIC],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, streamed")},
        description="Any report table as CSV: the KPIs, per day, per hub, driver or source, failures per reason, "
        "or the orders behind a figure (`metric`). Cells that a spreadsheet would read as formulas are quoted.",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        table = request.query_params.get("table", "")
        if table not in TABLES:
            raise ValidationFailed({"table": [f"One of: {', '.join(TABLES)}."]})
        metric = selectors.drill_metric(request.query_params) if table == "orders" else None
        f = self.filters(request)
        lines = self._lines(f, table, metric)
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        name = f"lastmile-{table}{'-' + metric.replace(':', '-') if metric else ''}-{f.date_from}-{f.date_to}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def _lines(self, f: selectors.ReportFilters, table: str, metric: str | None):
        if table == "summary":
            figures = _flat(selectors.report_kpis(f)["kpis"])
            return csv_lines(["from", "to", *FLAT_COLUMNS],
                             [[f.date_from, f.date_to, *(figures[c] for c in FLAT_COLUMNS)]])
        if table == "daily":
            return csv_lines(["day", *FLAT_COLUMNS],
                             ([r["day"], *(_flat(r)[c] for c in FLAT_COLUMNS)] for r in selectors.report_series(f)))
        if table in ("hubs", "drivers", "sources"):
            rows = selectors.report_breakdown(f, by=table[:-1])
            return csv_lines([table[:-1], "id", *FLAT_COLUMNS],
                             ([r["label"], r["key"], *(_flat(r)[c] for c in FLAT_COLUMNS)] for r in rows))
        if table == "reasons":
            return csv_lines(["reason", "failed", "share"], ([r["key"], r["failed"], r["share"]] for r in _reasons(f)))
        # Before the first row is sent: a bad filter must still be a JSON error, not half a file.
        qs = selectors.drill_queryset(f, metric or "attempts")
        return csv_lines(ORDER_COLUMNS, self._order_rows(f, metric or "attempts", qs))

    @staticmethod
    def _order_rows(f: selectors.ReportFilters, metric: str, qs):
        chunk: list[Any] = []
        for obj in qs.iterator(chunk_size=2000):
            chunk.append(obj)
            if len(chunk) == 2000:
                yield from ([r[c] for c in ORDER_COLUMNS] for r in selectors.drill_rows(f, metric, chunk))
                chunk = []
        yield from ([r[c] for c in ORDER_COLUMNS] for r in selectors.drill_rows(f, metric, chunk))
