"""CSV upload: ``POST /api/v1/integrations/csv/`` (multipart ``file``, or a text/csv body)."""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import actor_for_request
from apps.accounts.throttling import ApiClientRateThrottle
from apps.common.exceptions import ValidationFailed

from .services.spreadsheet import csv_import


class CsvParser(BaseParser):
    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"file_bytes": stream.read()}


_SOURCE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")

ImportResult = inline_serializer("CsvImportResult", {
    "created": serializers.IntegerField(), "existing": serializers.IntegerField(), "rows": serializers.IntegerField(),
    "dry_run": serializers.BooleanField(), "orders": serializers.IntegerField(),
    "warnings": serializers.ListField(child=serializers.DictField()),
    "results": serializers.ListField(child=serializers.DictField()),
})


class CsvImportView(APIView):
    """Import orders from a spreadsheet, all or nothing. A rejected file is a 400 with
    ``errors``: one ``{row, field, message}`` per problem, so the sheet can be fixed in one go."""

    scope_resource = "orders"
    parser_classes = [MultiPartParser, CsvParser]
    throttle_classes = [ApiClientRateThrottle]

    @extend_schema(
        request={"multipart/form-data": inline_serializer("CsvUpload", {
            "file": serializers.FileField(), "source": serializers.CharField(required=False),
            "default_country": serializers.CharField(required=False)}), "text/csv": OpenApiTypes.STR},
        parameters=[OpenApiParameter("dry_run", bool, description="Check the file without importing"),
                    OpenApiParameter("source", str, description="Order source for a text/csv body (default csv)")],
        responses={201: ImportResult, 200: ImportResult, 400: OpenApiResponse(description="csv_invalid: row errors")},
        examples=[OpenApiExample("A rejected file", response_only=True, status_codes=["400"], value={
            "code": "csv_invalid", "message": "1 problem(s) in the file; nothing was imported.",
            "errors": [{"row": 3, "field": "postal_code", "message": "'1011' is not a valid DE postal code"}],
            "warnings": [], "rows": 4})],
    )
    def post(self, request: Request) -> Response:
        actor = actor_for_request(request)
        upload = request.data.get("file")
        content = upload.read() if upload is not None and hasattr(upload, "read") else request.data.get("file_bytes")
        if not content:
            raise ValidationFailed({"file": ["Upload a CSV file (multipart field 'file', or a text/csv body)."]})
        source = actor.order_source or request.data.get("source") or request.query_params.get("source") or "csv"
        if not isinstance(source, str) or not _SOURCE.match(source):
            raise ValidationFailed({"source": ["Letters, digits and _ . : - only, at most 64."]})
        country = request.data.get("default_country") or request.query_params.get("default_country") or ""
        dry_run = request.query_params.get("dry_run") == "true"
        imported = csv_import(actor=actor, content=content, source=source, default_country=str(country),
                              dry_run=dry_run)
        created = sum(r.created for r in imported.results)
        body = {
            "created": created, "existing": len(imported.results) - created, "rows": imported.parsed.rows,
            "dry_run": dry_run, "orders": len(imported.parsed.orders),
            "warnings": [w.as_json() for w in imported.parsed.warnings],
            "results": [{"id": r.order.pk, "external_id": r.order.external_id,
                         "status": "created" if r.created else "existing"} for r in imported.results],
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
