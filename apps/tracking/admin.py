"""Location history, hot positions and tracking tokens: read-only, each organization its own.
Only the services write them (pings are history; a token is revoked through its service)."""

from django.contrib import admin

from apps.common.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin

from .models import DeliveryPreferences, DeliveryRating, DriverPosition, LocationPing, TrackingSettings, TrackingToken


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


@admin.register(TrackingSettings)
class TrackingSettingsAdmin(OrgScopedAdmin):
    """What the customers' tracking page reveals and how it looks (docs/tracking.md)."""

    list_display = ["org", "driver_visible_within_stops", "driver_visible_within_minutes",
                    "link_valid_after_completion_h", "show_pod", "brand_name", "brand_colour"]


@admin.register(DeliveryPreferences)
class DeliveryPreferencesAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["order", "instructions", "pin_confirmed_at", "updated_at"]
    list_select_related = ["order"]


@admin.register(DeliveryRating)
class DeliveryRatingAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["order", "score", "comment", "created_at"]
    list_select_related = ["order"]
