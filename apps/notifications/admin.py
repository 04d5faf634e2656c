"""Per-organization notification rules (on/off, editable texts) and settings; the message
log read-only."""

from django.contrib import admin

from apps.common.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin

from .models import Message, NotificationRule, NotificationSettings, OptOut
from .services import message_review_settle


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
    actions = ["confirm_sent", "send_again"]

    def _settle(self, request, queryset, *, resend: bool) -> None:
        by = request.user.get_username()
        moved = sum(message_review_settle(message_id=pk, resend=resend, by=by)
                    for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{moved} message(s) settled; only messages in review move.")

    @admin.action(description="Review: the provider has it (mark sent)")
    def confirm_sent(self, request, queryset) -> None:
        self._settle(request, queryset, resend=False)

    @admin.action(description="Review: the provider does not have it (send again)")
    def send_again(self, request, queryset) -> None:
        self._settle(request, queryset, resend=True)


@admin.register(OptOut)
class OptOutAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["channel", "address", "source", "created_at"]
