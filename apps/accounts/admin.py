from django.contrib import admin
from django.contrib.admin.options import ActionLocation

from apps.common.admin_scoping import ReadOnlyOrgScopedAdmin

from .models import ApiClient, Membership, Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "created_at"]
    search_fields = ["name", "slug"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        membership = getattr(request.user, "membership", None)
        return qs.filter(pk=membership.org_id if membership else None)

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        # Organizations are created with organization_create, which also sets up the event counter.
        return False


@admin.register(Membership)
class MembershipAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["user", "org", "role", "created_at"]
    list_filter = ["role"]
    actions = ["remove"]

    @admin.action(description="Remove selected people from the organization")
    def remove(self, request, queryset):
        from .services import member_remove

        for membership in queryset.exclude(user=request.user):  # nobody locks themselves out
            member_remove(membership=membership)

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location)
        membership = getattr(request.user, "membership", None)
        if not request.user.is_superuser and (membership is None or membership.role != "admin"):
            actions.pop("remove", None)  # only admins manage people
        return actions


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyOrgScopedAdmin):
    """Keys are created through the API (the plaintext is shown once there); here they
    are listed and revoked. Nothing else is editable: un-revoking a key or widening its
    scopes would bypass the rules api_client_create enforces."""

    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected API clients")
    def revoke(self, request, queryset):
        from .services import api_client_revoke

        for client in queryset:
            api_client_revoke(client=client)

