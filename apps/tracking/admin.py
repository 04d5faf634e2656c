"""Location history, hot positions and tracking tokens: read-only, each organization its own.
Only the services write them (pings are history; a token is revoked through its service)."""

from django.contrib import admin

from apps.common.admin_scoping import ReadOnlyOrgScopedAdmin

from .models import DriverPosition, LocationPing, TrackingToken


@admin.register(LocationPing)
class LocationPingAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["driver", "device_time", "lat", "lng", "accuracy_m", "status", "received_at"]
    list_filter = ["status"]
    list_select_related = ["driver"]
    ordering = ["-device_time"]
    show_full_result_count = False  # a count(*) over the whole history on every page is slow


@admin.register(DriverPosition)
class DriverPositionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["driver", "device_time", "lat", "lng", "accuracy_m", "last_ping_at", "stale_since"]
    list_select_related = ["driver"]


@admin.register(TrackingToken)
class TrackingTokenAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["__str__", "order", "created_at", "expires_at", "revoked_at"]
    list_select_related = ["order"]
    # The token is a credential for the customer's page: the admin shows its prefix only.
    exclude = ["token"]
