"""Hubs, vehicles and drivers."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.views import ScopedViewSet

from .. import selectors
from ..inputs import DriverIn, DriverPatch, DutyIn, HubIn, VehicleIn, parse
from ..models import Driver, Hub, Vehicle
from ..serializers import DriverSerializer, HubSerializer, VehicleSerializer
from ..services import fleet


class HubViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Hub.objects.none()
    scope_resource = "hubs"
    serializer_class = HubSerializer

    def scoped(self):
        return selectors.hub_list(actor=self.actor)

    @extend_schema(request=HubIn, responses={201: HubSerializer})
    def create(self, request: Request) -> Response:
        hub = fleet.hub_create(actor=self.actor, data=parse(HubIn, request.data))
        return Response(HubSerializer(hub).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=HubIn, responses=HubSerializer)
    def update(self, request: Request, pk: str) -> Response:
        hub = fleet.hub_update(actor=self.actor, hub=self.get_object(), data=parse(HubIn, request.data))
        return Response(HubSerializer(hub).data)


class VehicleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Vehicle.objects.none()
    scope_resource = "fleet"
    serializer_class = VehicleSerializer

    def scoped(self):
        return selectors.vehicle_list(actor=self.actor)

    @extend_schema(request=VehicleIn, responses={201: VehicleSerializer})
    def create(self, request: Request) -> Response:
        vehicle = fleet.vehicle_create(actor=self.actor, data=parse(VehicleIn, request.data))
        return Response(VehicleSerializer(vehicle).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VehicleIn, responses=VehicleSerializer)
    def update(self, request: Request, pk: str) -> Response:
        vehicle = fleet.vehicle_update(actor=self.actor, vehicle=self.get_object(), data=parse(VehicleIn, request.data))
        return Response(VehicleSerializer(vehicle).data)


class DriverViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Driver.objects.none()
    scope_resource = "fleet"
    # A driver starts and ends their own shift; the selector limits them to themselves.
    scope_map = {"duty": "stops:write"}
    serializer_class = DriverSerializer

    def scoped(self):
        return selectors.driver_list(actor=self.actor)

    @extend_schema(request=DriverIn, responses={201: DriverSerializer})
    def create(self, request: Request) -> Response:
        driver = fleet.driver_create(actor=self.actor, data=parse(DriverIn, request.data))
        return Response(DriverSerializer(driver).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DriverPatch, responses=DriverSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        driver = fleet.driver_update(actor=self.actor, driver=self.get_object(), patch=parse(DriverPatch, request.data))
        return Response(DriverSerializer(driver).data)

    @extend_schema(request=DutyIn, responses=DriverSerializer)
    @action(detail=True, methods=["post"])
    def duty(self, request: Request, pk: str) -> Response:
        driver = self.get_object()  # another tenant's id is a 404 whatever the body says
        data = parse(DutyIn, request.data)
        driver = fleet.driver_set_duty(actor=self.actor, driver=driver, on_duty=data.on_duty)
        return Response(DriverSerializer(driver).data)
