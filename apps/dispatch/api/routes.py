"""Routes and stops."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.exceptions import ValidationFailed
from apps.common.views import ScopedViewSet

from .. import selectors
from ..inputs import RouteIn, RoutePatch, RouteStopsIn, StopArriveIn, StopCompleteIn, StopFailIn, parse
from ..models import Route, Stop
from ..serializers import RouteDetailSerializer, RouteSerializer, StopSerializer
from ..services import routes, stops

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="A UUID the client makes once per action: a retry with the same key returns the first answer "
                "(header Idempotent-Replayed: true); the same key with other content is a 409.",
)


class RouteViewSet(mixins.ListModelMixin, ScopedViewSet):
    queryset = Route.objects.none()
    scope_resource = "routes"
    # Drivers start and finish their own routes (the selector shows them only theirs).
    scope_map = {"start": "stops:write", "complete": "stops:write"}
    serializer_class = RouteSerializer

    def scoped(self):
        params = self.request.query_params if self.action == "list" else {}
        return selectors.route_list(actor=self.actor, params=params)

    def _detail(self, route, code: int = status.HTTP_200_OK) -> Response:
        return Response(RouteDetailSerializer(route).data, status=code)

    @extend_schema(parameters=[OpenApiParameter("date", str), OpenApiParameter("status", str),
                               OpenApiParameter("driver", int)])
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(responses=RouteDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._detail(self.get_object())

    @extend_schema(request=RouteIn, responses={201: RouteDetailSerializer})
    def create(self, request: Request) -> Response:
        route = routes.route_create(actor=self.actor, data=parse(RouteIn, request.data))
        return self._detail(route, status.HTTP_201_CREATED)

    @extend_schema(request=RoutePatch, responses=RouteDetailSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        route = routes.route_update(actor=self.actor, route=self.get_object(), patch=parse(RoutePatch, request.data))
        return self._detail(route)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        routes.route_delete(actor=self.actor, route=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=RouteStopsIn, responses=RouteDetailSerializer,
                   description="Set the order of the route's pending stops; add and remove orders.")
    @action(detail=True, methods=["put"], url_path="stops")
    def set_stops(self, request: Request, pk: str) -> Response:
        route = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(RouteStopsIn, request.data)
        route = routes.route_set_stops(actor=self.actor, route=route, order_ids=data.orders,
                                       expected_version=data.expected_version)
        return self._detail(route)

    @extend_schema(request=None, responses=RouteDetailSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str) -> Response:
        return self._detail(routes.route_publish(actor=self.actor, route=self.get_object()))

    @extend_schema(request=None, responses=RouteDetailSerializer)
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, pk: str) -> Response:
        return self._detail(routes.route_unpublish(actor=self.actor, route=self.get_object()))

    @extend_schema(request=None, responses=RouteDetailSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._detail(routes.route_start(actor=self.actor, route=self.get_object()))

    @extend_schema(request=None, responses=RouteDetailSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        return self._detail(routes.route_complete(actor=self.actor, route=self.get_object()))


class StopViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Stop.objects.none()
    scope_resource = "stops"
    serializer_class = StopSerializer

    def scoped(self):
        params = self.request.query_params if self.action == "list" else {}
        return selectors.stop_list(actor=self.actor, params=params).prefetch_related("order__items")

    @extend_schema(parameters=[OpenApiParameter("route", int), OpenApiParameter("order", int),
                               OpenApiParameter("state", str),
                               OpenApiParameter("date", str, description="Stops on routes of this day (YYYY-MM-DD)")])
    def list(self, request: Request) -> Response:
        return super().list(request)

    def _once(self, request: Request, kind: str, perform) -> Response:
        """Exactly once when the client sends an ``Idempotency-Key`` (a UUID): a retry
        gets the first answer back (apps/pod/services.py, docs/pod.md)."""
        raw = request.headers.get("Idempotency-Key")
        if not raw:
            return Response(perform())
        from apps.pod.services import stop_action_once

        try:
            key = uuid.UUID(raw)
        except ValueError:
            raise ValidationFailed({"Idempotency-Key": ["Must be a UUID."]}) from None
        body = request.data if isinstance(request.data, dict) else {}
        answer, replayed = stop_action_once(actor=self.actor, key=key, kind=kind, stop_id=int(self.kwargs["pk"]),
                                            body=body, perform=perform)
        return Response(answer, headers={"Idempotent-Replayed": "true"} if replayed else {})

    def _stop_data(self, stop) -> dict:
        return StopSerializer(self.get_queryset().get(pk=stop.pk)).data

    @extend_schema(request=StopArriveIn, responses=StopSerializer, parameters=[IDEMPOTENCY_KEY])
    @action(detail=True, methods=["post"])
    def arrive(self, request: Request, pk: str) -> Response:
        stop = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(StopArriveIn, request.data or {})
        return self._once(request, "arrive", lambda: self._stop_data(
            stops.stop_arrive(actor=self.actor, stop=stop, occurred_at=data.occurred_at)))

    @extend_schema(request=StopCompleteIn, responses=StopSerializer, parameters=[IDEMPOTENCY_KEY])
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        stop = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(StopCompleteIn, request.data or {})

        def perform() -> dict:
            if self.actor.is_driver:
                # Drivers prove deliveries; this endpoint carries no proof, so it is open to
                # them only for stops that need none (the driver app uses /driver/actions/).
                from apps.pod.requirements import Captured, require, requirements_for

                require(requirements_for(stop.order), Captured(notes=data.notes), order=stop.order)
            return self._stop_data(stops.stop_complete(actor=self.actor, stop=stop, notes=data.notes,
                                                       occurred_at=data.occurred_at))

        return self._once(request, "complete", perform)

    @extend_schema(request=StopFailIn, responses=StopSerializer, parameters=[IDEMPOTENCY_KEY])
    @action(detail=True, methods=["post"])
    def fail(self, request: Request, pk: str) -> Response:
        stop = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(StopFailIn, request.data)
        return self._once(request, "fail", lambda: self._stop_data(
            stops.stop_fail(actor=self.actor, stop=stop, reason=data.reason, notes=data.notes,
                            occurred_at=data.occurred_at)))
