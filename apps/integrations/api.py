"""REST API of the integrations: connections, the inbound attention queue, mappings."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.exceptions import BusinessRuleViolation, ValidationFailed
from apps.common.views import ScopedViewSet
from apps.dispatch.inputs import parse

from . import selectors
from .inputs import FIXABLE, BulkReprocessIn, ConnectionIn, FixIn, MappingIn, MappingVersionIn, RotateIn, TryIn
from .models import Connection, InboundMessage, Mapping
from .serializers import (
    ConnectionSerializer,
    ConnectionWithSecretSerializer,
    InboundMessageDetailSerializer,
    InboundMessageSerializer,
    MappingSerializer,
    MappingVersionSerializer,
    TryResultSerializer,
)
from .services import connections, inbound, mappings

MAGENTO_SPEC = {
    "external_id": "entity_id",
    "updated_at": "updated_at",
    "timezone": "America/New_York",
    "action": {"path": "status", "cancel": ["canceled"], "ignore": ["pending_payment"]},
    "fields": {
        "reference": "increment_id",
        "customer_name": {"paths": ["shipping_address.firstname", "shipping_address.lastname"], "join": " "},
        "address_line1": "shipping_address.street",
        "city": "shipping_address.city",
        "postal_code": "shipping_address.postcode",
        "region": "shipping_address.region",
        "country": "shipping_address.country_id",
        "customer_phone": "shipping_address.telephone",
        "customer_email": "customer_email",
        "priority": {"path": "shipping_method", "map": {"express_express": 2}, "default": 1},
    },
    "items": {"path": "line_items", "sku": ["sku", "name"], "description": "name", "quantity": "qty"},
    "signature": {"header": "X-Stock2shop-Signature", "algorithm": "sha256", "encoding": "base64"},
    "dedupe": {"paths": ["entity_id", "updated_at"]},
}


class ConnectionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Stores and partner systems that send orders. Secrets are shown once, when set."""

    queryset = Connection.objects.none()
    scope_resource = "integrations"
    scope_map = {"create": "integrations:manage", "rotate_secret": "integrations:manage",
                 "try_payload": "integrations:write", "reconcile": "integrations:write"}
    serializer_class = ConnectionSerializer

    def scoped(self):
        return selectors.connection_list(actor=self.actor)

    @extend_schema(request=ConnectionIn, responses={201: ConnectionWithSecretSerializer}, examples=[
        OpenApiExample("Shopify store", request_only=True, value={
            "kind": "shopify", "name": "Acme Shop", "store": "acme-shop.myshopify.com", "secret": "shpss_…",
            "options": {"default_country": "DE"}}),
    ])
    def create(self, request: Request) -> Response:
        data = parse(ConnectionIn, request.data)
        mapping = None
        if data.mapping is not None:
            mapping = selectors.mapping_list(actor=self.actor).filter(pk=data.mapping).first()
            if mapping is None:
                raise ValidationFailed({"mapping": ["No such mapping."]})
        connection = connections.connection_create(
            org=self.actor.org, kind=data.kind, name=data.name, store=data.store, secret=data.secret, source=data.source,
            options=data.options.model_dump(exclude_none=True), mapping=mapping,
        )
        return Response(ConnectionWithSecretSerializer(connection, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=RotateIn, responses=ConnectionWithSecretSerializer,
                   description="Set a new signing secret; the previous one stays valid for `grace_hours`.")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        data = parse(RotateIn, request.data or {})
        connection = connections.connection_rotate_secret(connection=self.get_object(), secret=data.secret,
                                                          grace=timedelta(hours=data.grace_hours))
        return Response(ConnectionWithSecretSerializer(connection, context={"request": request}).data)

    @extend_schema(request=None, responses={202: None},
                   description="Queue a pull of the store's recently changed orders through its API (Shopify, "
                               "WooCommerce); each becomes an inbound message like a webhook would.")
    @action(detail=True, methods=["post"])
    def reconcile(self, request: Request, pk: str) -> Response:
        from .tasks import reconcile_connection

        connection = self.get_object()
        if connection.kind not in ("shopify", "woocommerce") or not connection.api:
            raise BusinessRuleViolation("Only Shopify and WooCommerce connections with API credentials can be "
                                        "reconciled.", code="not_reconcilable")
        reconcile_connection.enqueue(connection.pk)
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=TryIn, responses=TryResultSerializer,
                   description="What a sample payload would become through this connection; nothing is saved.")
    @action(detail=True, methods=["post"], url_path="try")
    def try_payload(self, request: Request, pk: str) -> Response:
        connection = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(TryIn, request.data)
        return Response(mappings.connection_try(connection=connection, payload=data.payload,
                                                topic=data.topic).as_json())


MESSAGE_FILTERS = [
    OpenApiParameter("attention", bool, description="true: the needs-attention queue"),
    OpenApiParameter("status", str, description="received, processed, stale, ignored or needs_attention"),
    OpenApiParameter("connection", int),
    OpenApiParameter("external_id", str),
]


class InboundMessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Every verified inbound request, raw, with what became of it. ``?attention=true`` is
    the queue of messages a person must look at: fix, reprocess or dismiss them."""

    queryset = InboundMessage.objects.none()
    scope_resource = "integrations"
    serializer_class = InboundMessageSerializer

    def get_serializer_class(self):
        return InboundMessageDetailSerializer if self.action == "retrieve" else InboundMessageSerializer

    def scoped(self):
        params = self.request.query_params if self.action == "list" else {}
        return selectors.message_list(actor=self.actor, params=params)

    @extend_schema(parameters=MESSAGE_FILTERS)
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(request=FixIn, responses=InboundMessageSerializer, examples=[
        OpenApiExample("Correct a postal code", request_only=True, value={"overrides": {"postal_code": "10119"}}),
    ], description="Correct order fields of a message and process it again.")
    @action(detail=True, methods=["post"])
    def fix(self, request: Request, pk: str) -> Response:
        message = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(FixIn, request.data)
        unknown = sorted(set(data.overrides) - FIXABLE)
        if unknown:
            raise ValidationFailed({"overrides": [f"Not order fields: {', '.join(unknown)}."]})
        message = inbound.inbound_fix(message=message, overrides=data.overrides)
        return Response(InboundMessageSerializer(message).data)

    @extend_schema(request=None, responses=InboundMessageSerializer,
                   description="Process a needs-attention message again (after fixing its mapping or the order).")
    @action(detail=True, methods=["post"])
    def reprocess(self, request: Request, pk: str) -> Response:
        return Response(InboundMessageSerializer(inbound.inbound_reprocess(message=self.get_object())).data)

    @extend_schema(request=BulkReprocessIn, responses=InboundMessageSerializer(many=True),
                   operation_id="integrations_messages_bulk_reprocess",
                   description="Reprocess several needs-attention messages; each is processed on its own.")
    @action(detail=False, methods=["post"], url_path="reprocess")
    def bulk_reprocess(self, request: Request) -> Response:
        data = parse(BulkReprocessIn, request.data)
        found = {m.pk: m for m in self.get_queryset().filter(pk__in=data.ids)}
        missing = [i for i in data.ids if i not in found]
        if missing:
            raise ValidationFailed({"ids": [f"No such messages: {', '.join(map(str, missing))}."]})
        results = [inbound.inbound_reprocess(message=found[i]) for i in data.ids]
        return Response(InboundMessageSerializer(results, many=True).data)

    @extend_schema(request=None, responses=InboundMessageSerializer,
                   description="Take a message out of the attention queue without applying it.")
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str) -> Response:
        return Response(InboundMessageSerializer(inbound.inbound_dismiss(message=self.get_object())).data)


class MappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Partner shapes described as data (see the README's onboarding walk-through)."""

    queryset = Mapping.objects.none()
    scope_resource = "integrations"
    scope_map = {"create": "integrations:manage", "versions": "integrations:read",
                 "versions:post": "integrations:manage", "try_payload": "integrations:write",
                 "try_draft": "integrations:write"}
    serializer_class = MappingSerializer

    def scoped(self):
        return selectors.mapping_list(actor=self.actor)

    @extend_schema(request=MappingIn, responses={201: MappingSerializer}, examples=[
        OpenApiExample("Magento 2 (stock2shop module)", request_only=True, value={"name": "Magento", "spec": MAGENTO_SPEC}),
    ])
    def create(self, request: Request) -> Response:
        data = parse(MappingIn, request.data)
        mapping = mappings.mapping_create(org=self.actor.org, name=data.name, spec=data.spec, actor_label=self.actor.label)
        return Response(MappingSerializer(mapping).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TryIn, responses=TryResultSerializer, operation_id="integrations_mappings_try_draft",
                   description="Try a draft mapping (`spec`, required) on a sample before saving anything.")
    @action(detail=False, methods=["post"], url_path="try")
    def try_draft(self, request: Request) -> Response:
        data = parse(TryIn, request.data)
        if data.spec is None:
            raise ValidationFailed({"spec": ["Send the draft mapping to try."]})
        return Response(mappings.mapping_try(spec=data.spec, payload=data.payload, topic=data.topic).as_json())

    @extend_schema(methods=["get"], request=None, responses=MappingVersionSerializer(many=True))
    @extend_schema(methods=["post"], request=MappingVersionIn, responses={201: MappingVersionSerializer},
                   description="GET lists every version; POST saves a new one (needs integrations:manage).")
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, pk: str) -> Response:
        mapping = self.get_object()
        if request.method == "GET":
            return Response(MappingVersionSerializer(mapping.versions.order_by("-version"), many=True).data)
        data = parse(MappingVersionIn, request.data)
        version = mappings.mapping_revise(mapping=mapping, spec=data.spec, actor_label=self.actor.label)
        return Response(MappingVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TryIn, responses=TryResultSerializer, examples=[
        OpenApiExample("A sample order", request_only=True, value={"payload": {"entity_id": "7", "status": "pending"}}),
    ], description="Run a sample payload through the saved mapping (or `spec`, a draft) and return the "
                   "normalized order and every problem found. Nothing is saved.")
    @action(detail=True, methods=["post"], url_path="try")
    def try_payload(self, request: Request, pk: str) -> Response:
        mapping = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(TryIn, request.data)
        spec = data.spec if data.spec is not None else mapping.current.spec
        return Response(mappings.mapping_try(spec=spec, payload=data.payload, topic=data.topic).as_json())
