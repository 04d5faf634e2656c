"""Output shapes of the dispatch API. Input is validated by the contracts in inputs.py."""

from rest_framework import serializers

from .models import Driver, Hub, Order, OrderItem, Route, Stop, Vehicle


class HubSerializer(serializers.ModelSerializer):
    class Meta:
        model = Hub
        fields = ["id", "name", "code", "timezone", "address_line1", "address_line2", "city", "postal_code",
                  "region", "country", "lat", "lng", "opening_hours", "created_at", "updated_at"]


class VehicleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Vehicle
        fields = ["id", "name", "plate", "type", "capacity_weight_kg", "capacity_volume_l", "capacity_parcels",
                  "skills", "home_hub", "active", "created_at", "updated_at"]


class DriverSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Driver
        fields = ["id", "username", "name", "phone", "shift_start", "shift_end", "home_hub", "current_vehicle",
                  "on_duty", "active", "created_at", "updated_at"]


class OrderItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["sku", "description", "quantity", "weight_kg", "volume_l"]


class OrderSerializer(serializers.ModelSerializer):
    items = OrderItemSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id", "source", "external_id", "reference", "hub", "state", "outcome", "failure_reason",
            "failure_notes", "attempts", "customer_name", "customer_phone", "customer_email", "address_line1",
            "address_line2", "city", "postal_code", "region", "country", "lat", "lng", "geocode_confidence",
            "window_start", "window_end", "service_time_s", "instructions", "priority", "pod_requirements",
            "pod_min_photos", "pod_min_age", "required_skills", "custom_fields", "items", "total_weight_kg",
            "total_volume_l", "parcel_count", "created_at", "updated_at", "completed_at",
        ]


class CustomerPreferencesSerializer(serializers.Serializer):
    """What the customer said on their tracking page (apps/tracking): for the driver."""

    instructions = serializers.CharField()
    gate_code = serializers.CharField()
    pin_lat = serializers.FloatField(allow_null=True)
    pin_lng = serializers.FloatField(allow_null=True)
    pin_confirmed_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()


class StopOrderSerializer(serializers.ModelSerializer):
    """What a driver needs to know about the order at a stop."""

    items = OrderItemSerializer(many=True, read_only=True)
    customer_preferences = CustomerPreferencesSerializer(source="preferences", read_only=True, allow_null=True,
                                                         default=None)

    class Meta:
        model = Order
        fields = ["id", "external_id", "reference", "state", "customer_name", "customer_phone", "address_line1",
                  "address_line2", "city", "postal_code", "country", "lat", "lng", "geocode_confidence",
                  "window_start", "window_end", "service_time_s", "instructions", "priority", "pod_requirements",
                  "pod_min_photos", "pod_min_age",
                  "items", "parcel_count", "customer_preferences"]


class StopSerializer(serializers.ModelSerializer):
    order = StopOrderSerializer(read_only=True)

    class Meta:
        model = Stop
        fields = ["id", "route", "kind", "sequence", "state", "outcome", "failure_reason", "notes",
                  "planned_arrival", "eta", "arrived_at", "completed_at", "order"]


class RouteSerializer(serializers.ModelSerializer):
    driver_name = serializers.CharField(source="driver.name", read_only=True, default=None)
    vehicle_name = serializers.CharField(source="vehicle.name", read_only=True, default=None)

    class Meta:
        model = Route
        fields = ["id", "name", "date", "status", "version", "hub", "driver", "driver_name", "vehicle",
                  "vehicle_name", "start_lat", "start_lng", "end_lat", "end_lng", "planned_start", "planned_end",
                  "started_at", "completed_at", "created_at", "updated_at"]


class RouteDetailSerializer(RouteSerializer):
    stops = serializers.SerializerMethodField()

    class Meta(RouteSerializer.Meta):
        fields = [*RouteSerializer.Meta.fields, "stops"]

    def get_stops(self, route: Route) -> list[dict]:
        from .selectors import route_stops

        stops = route_stops(route=route).select_related("order__preferences").prefetch_related("order__items")
        return StopSerializer(stops, many=True).data


class BulkResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["created", "existing"])


class BulkResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    results = BulkResultSerializer(many=True)
