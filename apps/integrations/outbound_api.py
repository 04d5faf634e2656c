"""REST API of outbound webhooks: endpoints, their delivery log, replay."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.exceptions import ValidationFailed
from apps.common.views import ScopedViewSet
from apps.dispatch.inputs import parse

from .inputs import EndpointIn, EndpointPatch, ReplayIn, RotateIn
from .models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from .serializers import (
    AttemptSerializer,
    DeliverySerializer,
    EndpointSerializer,
    EndpointWithSecretSerializer,
    ReplayResultSerializer,
)
from .services import outbound
from .services.outbound import _check_types


class EndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Partner URLs subscribed to event types. Requests are signed per Standard Webhooks."""

    queryset = WebhookEndpoint.objects.none()
    scope_resource = "webhooks"
    serializer_class = EndpointSerializer

    def scoped(self):
        rows = WebhookEndpoint.objects.filter(org=self.actor.org)
        return rows.filter(order_source=self.actor.order_source) if self.actor.order_source else rows

    @extend_schema(request=EndpointIn, responses={201: EndpointWithSecretSerializer}, examples=[
        OpenApiExample("Order statuses as AfterShip tags", request_only=True, value={
            "url": "https://partner.example.com/lastmile", "event_types": ["order.*"], "taxonomy": "aftership",
            "status_mapping": {"order.delivered": "DLV"}}),
    ])
    def create(self, request: Request) -> Response:
        data = parse(EndpointIn, request.data)
        endpoint = outbound.endpoint_create(org=self.actor.org, order_source=self.actor.order_source, **data.model_dump())
        return Response(EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointPatch, responses=EndpointSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        data = parse(EndpointPatch, request.data)
        endpoint = self.get_object()
        changes = data.model_dump(exclude_unset=True)
        if data.event_types is not None and (bad := _check_types(data.event_types)):
            raise ValidationFailed({"event_types": [f"Unknown event types: {', '.join(bad)}."]})
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save(update_fields=list(changes) or None)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(request=RotateIn, responses=EndpointWithSecretSerializer,
                   description="New signing secret; both are sent (two v1 signatures) until `grace_hours` pass.")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        data = parse(RotateIn, request.data or {})
        endpoint = outbound.endpoint_rotate_secret(endpoint=self.get_object(), grace=timedelta(hours=data.grace_hours))
        return Response(EndpointWithSecretSerializer(endpoint).data)

    @extend_schema(request=None, responses=EndpointSerializer,
                   description="Switch an endpoint back on (after a 410 disabled it); waiting deliveries go out in order.")
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str) -> Response:
        return Response(EndpointSerializer(outbound.endpoint_enable(endpoint=self.get_object())).data)


DELIVERY_FILTERS = [OpenApiParameter("endpoint", int), OpenApiParameter("status", str, description="pending, succeeded, dead"),
                    OpenApiParameter("event_type", str)]


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """The delivery log: every event sent (or to be sent) to every endpoint, with its attempts."""

    queryset = WebhookDelivery.objects.none()
    scope_resource = "webhooks"
    scope_map = {"attempts": "webhooks:read"}
    serializer_class = DeliverySerializer

    def scoped(self):
        rows = WebhookDelivery.objects.filter(org=self.actor.org).select_related("endpoint", "event")
        if self.actor.order_source:
            rows = rows.filter(endpoint__order_source=self.actor.order_source)
        if self.action != "list":
            return rows
        params = self.request.query_params
        if (value := params.get("status")) is not None and value != "":
            if value not in DeliveryStatus.values:
                raise ValidationFailed({"status": [f"One of {', '.join(DeliveryStatus.values)}."]})
            rows = rows.filter(status=value)
        if endpoint := params.get("endpoint"):
            if not (endpoint.isascii() and endpoint.isdigit()) or int(endpoint) > 2**63 - 1:
                raise ValidationFailed({"endpoint": ["Must be an id."]})
            rows = rows.filter(endpoint_id=int(endpoint))
        if event_type := params.get("event_type"):
            rows = rows.filter(event_type=event_type)
        return rows

    @extend_schema(parameters=DELIVERY_FILTERS)
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(responses=AttemptSerializer(many=True), description="Every attempt: headers, response, latency.")
    @action(detail=True, methods=["get"])
    def attempts(self, request: Request, pk: str) -> Response:
        return Response(AttemptSerializer(self.get_object().attempt_log.all(), many=True).data)

    @extend_schema(request=None, responses=ReplayResultSerializer,
                   description="Send again with the same webhook-id (dead letters, or a delivered one on request).")
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str) -> Response:
        return Response({"replayed": outbound.delivery_replay(deliveries=[self.get_object()])})

    @extend_schema(request=ReplayIn, responses=ReplayResultSerializer, operation_id="webhooks_deliveries_bulk_replay",
                   examples=[OpenApiExample("Every dead letter of one endpoint", request_only=True,
                                            value={"status": "dead", "endpoint": 3})],
                   description="Replay by ids, or every delivery with `status` (optionally of one `endpoint`).")
    @action(detail=False, methods=["post"], url_path="replay")
    def bulk_replay(self, request: Request) -> Response:
        data = parse(ReplayIn, request.data)
        if not data.ids and data.status is None:
            raise ValidationFailed({"ids": ["Give ids, or a status to replay every delivery in it."]})
        rows = WebhookDelivery.objects.filter(org=self.actor.org)
        if self.actor.order_source:
            rows = rows.filter(endpoint__order_source=self.actor.order_source)
        rows = rows.filter(pk__in=data.ids) if data.ids else rows.filter(status=data.status)
        if data.endpoint is not None:
            rows = rows.filter(endpoint_id=data.endpoint)
        return Response({"replayed": outbound.delivery_replay(deliveries=list(rows[:5000]))})
