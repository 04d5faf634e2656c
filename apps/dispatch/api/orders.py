"""Orders: single and bulk ingest, updates, and lifecycle actions."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.exceptions import ValidationFailed
from apps.common.views import ScopedViewSet

from .. import selectors
from ..inputs import BulkOrdersIn, CancelIn, OrderIn, OrderPatch, parse
from ..models import Order
from ..serializers import BulkResponseSerializer, OrderSerializer
from ..services import orders

ORDER_FILTERS = [
    OpenApiParameter("state", str, description="Comma-separated states"),
    OpenApiParameter("outcome", str, description="delivered or failed"),
    OpenApiParameter("source", str),
    OpenApiParameter("external_id", str),
    OpenApiParameter("hub", int),
    OpenApiParameter("route", int),
    OpenApiParameter("window_from", OpenApiTypes.DATETIME, description="Window ends at or after"),
    OpenApiParameter("window_to", OpenApiTypes.DATETIME, description="Window starts at or before"),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME),
    OpenApiParameter("q", str, description="Search customer, reference, external id and address"),
]


def _own_source(actor, data: OrderIn, path: str) -> OrderIn:
    """A shipper's key (bound to an order source) creates orders under that source only;
    the default source "api" stands for it."""
    if not actor.order_source or data.source == actor.order_source:
        return data
    if data.source == "api":
        return data.model_copy(update={"source": actor.order_source})
    raise ValidationFailed({path: [f"This key creates orders with source {actor.order_source!r} only."]})


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Order.objects.none()
    scope_resource = "orders"
    serializer_class = OrderSerializer

    def scoped(self):
        params = self.request.query_params if self.action == "list" else {}
        return selectors.order_list(actor=self.actor, params=params)

    @extend_schema(parameters=ORDER_FILTERS)
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(
        request=OrderIn,
        responses={201: OrderSerializer, 200: OrderSerializer},
        examples=[OpenApiExample("A shop's order", request_only=True, value={
            "source": "shop", "external_id": "1001", "reference": "#1001", "customer_name": "Erika Mustermann",
            "customer_phone": "+4930123456", "address_line1": "Torstraße 1", "city": "Berlin", "postal_code": "10119",
            "country": "DE", "lat": 52.529, "lng": 13.401, "window_start": "2026-11-23T09:00:00+01:00",
            "window_end": "2026-11-23T12:00:00+01:00",
            "items": [{"sku": "MUG-RED", "quantity": 2, "weight_kg": 0.4, "volume_l": 1.2}]})],
        description="Create an order. Re-posting the same source and external_id with the same content returns "
        "the existing order with 200; with different content it is a 409 `idempotency_conflict`.",
    )
    def create(self, request: Request) -> Response:
        data = _own_source(self.actor, parse(OrderIn, request.data), "source")
        result = orders.order_create(actor=self.actor, data=data)
        return Response(OrderSerializer(result.order).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @extend_schema(
        request=BulkOrdersIn,
        responses={201: BulkResponseSerializer, 200: BulkResponseSerializer},
        description=f"Create up to {settings.BULK_MAX_ORDERS} orders at once, all or nothing. Each result says "
        "whether the order was created or already existed with identical content.",
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        raw = request.data
        if isinstance(raw, dict) and isinstance(raw.get("orders"), list) and len(raw["orders"]) > settings.BULK_MAX_ORDERS:
            raise ValidationFailed({"orders": [f"At most {settings.BULK_MAX_ORDERS} orders per request; "
                                               f"got {len(raw['orders'])}. Split the batch."]})
        data = parse(BulkOrdersIn, raw)
        own = [_own_source(self.actor, o, f"orders.{i}.source") for i, o in enumerate(data.orders)]
        results = orders.order_bulk_create(actor=self.actor, orders=own)
        created = sum(r.created for r in results)
        body = {
            "created": created,
            "existing": len(results) - created,
            "results": [
                {"index": i, "id": r.order.pk, "external_id": r.order.external_id,
                 "status": "created" if r.created else "existing"}
                for i, r in enumerate(results)
            ],
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=OrderPatch, responses=OrderSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        order = orders.order_update(actor=self.actor, order=self.get_object(), patch=parse(OrderPatch, request.data))
        return Response(OrderSerializer(order).data)

    @extend_schema(request=CancelIn, responses=OrderSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        data = parse(CancelIn, request.data or {})
        order = orders.order_cancel(actor=self.actor, order=self.get_object(), reason=data.reason)
        return Response(OrderSerializer(order).data)

    @extend_schema(request=None, responses=OrderSerializer, description="Put a failed order back in the planning pool.")
    @action(detail=True, methods=["post"])
    def reschedule(self, request: Request, pk: str) -> Response:
        order = orders.order_reschedule(actor=self.actor, order=self.get_object())
        return Response(OrderSerializer(order).data)

    @extend_schema(request=None, responses=OrderSerializer, description="Send a failed order back to the shipper.")
    @action(detail=True, methods=["post"], url_path="return")
    def return_to_sender(self, request: Request, pk: str) -> Response:
        order = orders.order_return(actor=self.actor, order=self.get_object())
        return Response(OrderSerializer(order).data)
