"""Proof of delivery in the admin, each organization its own. Completion policies are
edited here (they are plain settings, no workflow); PODs, media, driver actions and
exceptions are records written by the services, shown read-only."""

from django.contrib import admin

from apps.common.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin

from .models import DispatchException, DriverAction, PodMedia, PodPolicy, PodSettings, ProofOfDelivery


@admin.register(PodPolicy)
class PodPolicyAdmin(OrgScopedAdmin):
    list_display = ["__str__", "min_photos", "signature", "recipient_name", "notes", "pin", "barcode", "min_age",
                    "share_photos_with_tracking"]


@admin.register(PodSettings)
class PodSettingsAdmin(OrgScopedAdmin):
    list_display = ["__str__", "media_retention_days"]


@admin.register(ProofOfDelivery)
class ProofOfDeliveryAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["__str__", "order", "driver", "recipient_name", "device_time", "created_at", "distance_m", "flags"]
    list_select_related = ["order", "driver"]
    ordering = ["-id"]


@admin.register(PodMedia)
class PodMediaAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["__str__", "kind", "original_format", "original_bytes", "width", "height", "created_at",
                    "purged_at"]
    # Storage names are internal; the console shows the images through signed links.
    exclude = ["original", "display", "thumb"]
    ordering = ["-id"]


@admin.register(DriverAction)
class DriverActionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["key", "kind", "driver", "stop", "outcome", "device_time", "created_at"]
    list_select_related = ["driver", "stop"]
    ordering = ["-id"]


@admin.register(DispatchException)
class DispatchExceptionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["__str__", "kind", "order", "created_at", "resolved_at"]
    list_filter = ["kind"]
    list_select_related = ["stop", "order"]
