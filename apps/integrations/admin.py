"""Back-office admin. A mapping is edited here as JSON: every save that changes it is a
new version, made by the same service (and checks) as the API's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from apps.common.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin, admin_actor

from .generic.mapping import spec_problems
from .models import Connection, InboundMessage, Mapping, MappingVersion, WebhookDelivery, WebhookEndpoint
from .services import mappings


class MappingForm(forms.ModelForm):
    spec = forms.JSONField(help_text="Where our order fields are in the partner's JSON; see the README.")

    class Meta:
        model = Mapping
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and (current := self.instance.current):
            self.fields["spec"].initial = current.spec

    def clean_spec(self) -> Any:
        spec = self.cleaned_data["spec"]
        problems = spec_problems(spec)
        if problems:
            raise ValidationError(problems)
        return spec


class VersionInline(admin.TabularInline):
    model = MappingVersion
    fields = ["version", "created_by", "created_at", "spec"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-version"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Mapping)
class MappingAdmin(OrgScopedAdmin):
    form = MappingForm
    list_display = ["name", "created_at"]
    inlines = [VersionInline]

    def save_model(self, request: HttpRequest, obj: Mapping, form: Any, change: bool) -> None:
        from apps.accounts.models import Organization

        org = obj.org if obj.org_id else Organization.objects.get(pk=request.user.membership.org_id)
        label = admin_actor(request, org).label
        spec = form.cleaned_data["spec"]
        if not change:
            saved = mappings.mapping_create(org=org, name=obj.name, spec=spec, actor_label=label)
            obj.pk = saved.pk
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)
        current = obj.current
        if current is None or current.spec != spec:
            mappings.mapping_revise(mapping=obj, spec=spec, actor_label=label)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # messages name the versions they used


@admin.register(Connection)
class ConnectionAdmin(OrgScopedAdmin):
    list_display = ["name", "kind", "source", "store", "active", "created_at"]
    list_filter = ["kind", "active"]
    fields = ["name", "kind", "source", "store", "mapping", "options", "active", "token"]
    readonly_fields = ["kind", "source", "token"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API, which shows the secret once


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["id", "connection", "topic", "status", "attention", "external_id", "received_at"]
    list_filter = ["status", "attention", "topic"]
    search_fields = ["external_id", "dedupe_key"]
    exclude = ["body"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["url", "event_types", "taxonomy", "active", "disabled_reason"]
    exclude = ["secret", "previous_secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["webhook_id", "endpoint", "event_type", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event_type"]
