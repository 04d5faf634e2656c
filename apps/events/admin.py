from django.contrib import admin

from apps.common.admin_scoping import ReadOnlyOrgScopedAdmin

from .models import Event


@admin.register(Event)
class EventAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["sequence", "type", "subject_type", "subject_id", "actor", "created_at"]
    list_filter = ["type", "subject_type"]
    search_fields = ["subject_id"]
    ordering = ["-sequence"]
