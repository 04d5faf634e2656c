"""Back-office admin. Reference data is edited here; lifecycle state is read-only
because it changes only through the services (which record events)."""

from django.contrib import admin

from apps.common.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin

from .models import Driver, Hub, Order, OrderItem, Route, Stop, Vehicle


@admin.register(Hub)
class HubAdmin(OrgScopedAdmin):
    list_display = ["name", "code", "city", "timezone"]
    search_fields = ["name", "code", "city"]


@admin.register(Vehicle)
class VehicleAdmin(OrgScopedAdmin):
    list_display = ["name", "plate", "type", "capacity_weight_kg", "capacity_volume_l", "capacity_parcels", "active"]
    list_filter = ["type", "active"]
    search_fields = ["name", "plate"]


@admin.register(Driver)
class DriverAdmin(OrgScopedAdmin):
    list_display = ["name", "phone", "home_hub", "current_vehicle", "on_duty", "active"]
    list_filter = ["on_duty", "active"]
    search_fields = ["name", "phone"]
    readonly_fields = ["user", "on_duty"]


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
