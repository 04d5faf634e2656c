"""Per-organization notification rules (on/off, editable texts) and settings; the message
log read-only."""

from django.contrib import admin

from apps.common.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin

from .models import Message, NotificationRule, NotificationSettings, OptOut


@admin.register(NotificationRule)
class NotificationRuleAdmin(OrgScopedAdmin):
    list_display = ["trigger", "enabled", "org"]
    list_filter = ["trigger", "enabled"]


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(OrgScopedAdmin):
    list_display = ["org", "quiet_hours_start", "quiet_hours_end", "eta_change_threshold_min", "arriving_soon_stops"]


@admin.register(Message)
class MessageAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["order", "trigger", "channel", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["trigger", "channel", "status"]
    list_select_related = ["order"]


@admin.register(OptOut)
class OptOutAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["channel", "address", "source", "created_at"]
