"""Back-office admin. Reference data is edited here; lifecycle state is read-only
because it changes only through the services (which record events)."""

from django.contrib import admin

from apps.common.admin_scoping import ReadOnlyOrgScopedAdmin, ServiceBackedAdmin

from .inputs import DriverPatch, HubIn, VehicleIn
from .models import Driver, Hub, Order, OrderItem, Route, Stop, Vehicle
from .services import fleet


@admin.register(Hub)
class HubAdmin(ServiceBackedAdmin):
    list_display = ["name", "code", "city", "timezone"]
    search_fields = ["name", "code", "city"]
    contract = HubIn

    def create_service(self, *, actor, data):
        return fleet.hub_create(actor=actor, data=data)

    def update_service(self, *, actor, obj, data):
        return fleet.hub_update(actor=actor, hub=obj, data=data)

    def has_delete_permission(self, request, obj=None):
        return False  # routes and history point at hubs


@admin.register(Vehicle)
class VehicleAdmin(ServiceBackedAdmin):
    list_display = ["name", "plate", "type", "capacity_weight_kg", "capacity_volume_l", "capacity_parcels", "active"]
    list_filter = ["type", "active"]
    search_fields = ["name", "plate"]
    contract = VehicleIn

    def create_service(self, *, actor, data):
        return fleet.vehicle_create(actor=actor, data=data)

    def update_service(self, *, actor, obj, data):
        return fleet.vehicle_update(actor=actor, vehicle=obj, data=data)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead; routes point at vehicles


@admin.register(Driver)
class DriverAdmin(ServiceBackedAdmin):
    """Drivers are people with a login: they are created through the API
    (POST /api/v1/drivers/), which makes the account; here they are edited."""

    list_display = ["name", "phone", "home_hub", "current_vehicle", "on_duty", "active"]
    list_filter = ["on_duty", "active"]
    search_fields = ["name", "phone"]
    readonly_fields = ["user", "on_duty"]
    contract = DriverPatch
    partial = True

    def update_service(self, *, actor, obj, data):
        return fleet.driver_update(actor=actor, driver=obj, patch=data)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["external_id", "source", "customer_name", "city", "state", "outcome", "window_start"]
    list_filter = ["state", "outcome", "source", "geocode_confidence"]
    search_fields = ["external_id", "reference", "customer_name", "address_line1"]
    inlines = [OrderItemInline]
    date_hierarchy = "created_at"


@admin.register(Route)
class RouteAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["__str__", "date", "driver", "vehicle", "status", "version"]
    list_filter = ["status", "date"]


@admin.register(Stop)
class StopAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["__str__", "route", "state", "outcome", "planned_arrival", "eta"]
    list_filter = ["state", "outcome", "kind"]
