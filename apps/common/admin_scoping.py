"""Admin scoped to the signed-in user's organization.

Staff who are members of an organization see and edit only its rows; foreign-key
choices are narrowed the same way. Superusers (operators of the platform) see all.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest


def _org_id(request: HttpRequest) -> int | None:
    membership = getattr(request.user, "membership", None)
    return membership.org_id if membership else None


class OrgScopedAdmin(admin.ModelAdmin):
    org_field = "org"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.org_field}_id": _org_id(request)}) if "__" not in self.org_field \
            else qs.filter(**{self.org_field: _org_id(request)})

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.org_field == "org":
            excluded.append("org")
        return excluded

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not request.user.is_superuser and self.org_field == "org":
            obj.org_id = _org_id(request)
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if not request.user.is_superuser and any(f.name == "org" for f in related._meta.fields):
            kwargs["queryset"] = related._default_manager.filter(org_id=_org_id(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or (request.user.is_staff and _org_id(request) is not None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)


class ReadOnlyOrgScopedAdmin(OrgScopedAdmin):
    """For history (the event log) and state that only services may change."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
