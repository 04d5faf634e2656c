"""Admin scoped to the signed-in user's organization.

Staff who are members of an organization see and edit only its rows; foreign-key
choices are narrowed the same way (users to the organization's members).
Superusers (operators of the platform) see everything.

Models with services are edited through them (``ServiceBackedAdmin``): the form is
validated by the same contract as the API and saved by the same service, so an
edit in the admin records its event and keeps the same invariants.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from pydantic import BaseModel
from pydantic import ValidationError as ContractError

from apps.accounts.actor import Actor
from apps.accounts.roles import ALL_SCOPES, ROLE_SCOPES


def _org_id(request: HttpRequest) -> int | None:
    membership = getattr(request.user, "membership", None)
    return membership.org_id if membership else None


def admin_actor(request: HttpRequest, org: Any) -> Actor:
    membership = getattr(request.user, "membership", None)
    scopes = ROLE_SCOPES[membership.role] if membership else ALL_SCOPES
    return Actor(org=org, scopes=scopes, user_id=request.user.pk, role=membership.role if membership else None)


class OrgScopedAdmin(admin.ModelAdmin):
    org_field = "org"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.org_field}_id": _org_id(request)})

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            excluded.append("org")
        return excluded

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser:
            return form_class
        org_id = _org_id(request)

        class OrgForm(form_class):  # type: ignore[misc, valid-type]
            def _post_clean(self) -> None:
                # With `org` left out of the form, Django would skip the per-organization
                # unique constraints and the save would fail with an IntegrityError.
                self.instance.org_id = org_id
                super()._post_clean()
                try:
                    self.instance.validate_constraints()
                except ValidationError as exc:
                    self._update_errors(exc)

        return OrgForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not request.user.is_superuser:
            obj.org_id = _org_id(request)
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            related = db_field.related_model
            if related is get_user_model():
                kwargs["queryset"] = related._default_manager.filter(membership__org_id=_org_id(request))
            elif any(f.name == "org" for f in related._meta.fields):
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


class ServiceBackedAdmin(OrgScopedAdmin):
    """Validate with ``contract`` and save with ``create_service``/``update_service``."""

    contract: type[BaseModel]
    partial = False  # True: send only the changed fields (a PATCH contract)

    def create_service(self, *, actor: Actor, data: BaseModel) -> Model:
        raise PermissionError("adding is not offered for this model")  # guarded by has_add_permission

    def update_service(self, *, actor: Actor, obj: Model, data: BaseModel) -> Model:
        raise PermissionError("changing is not offered for this model")

    def contract_data(self, form: Any) -> dict[str, Any]:
        names = set(self.contract.model_fields)
        if self.partial:
            names &= set(form.changed_data)
        data = {}
        for name in names:
            if name not in form.cleaned_data:
                continue
            value = form.cleaned_data[name]
            data[name] = value.pk if isinstance(value, Model) else value
        return data

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ContractForm(form_class):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                try:
                    self.contract_value = model_admin.contract.model_validate(model_admin.contract_data(self))
                except ContractError as exc:
                    for error in exc.errors(include_url=False):
                        field = str(error["loc"][0]) if error["loc"] else None
                        message = error["msg"].removeprefix("Value error, ")
                        self.add_error(field if field in self.fields else None, message)
                return cleaned

        return ContractForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not request.user.is_superuser:
            obj.org_id = _org_id(request)
        actor = admin_actor(request, obj.org)
        if change:
            saved = self.update_service(actor=actor, obj=type(obj).objects.get(pk=obj.pk), data=form.contract_value)
        else:
            saved = self.create_service(actor=actor, data=form.contract_value)
        obj.pk = saved.pk
        obj.refresh_from_db()


class ReadOnlyOrgScopedAdmin(OrgScopedAdmin):
    """For history (the event log) and state that only services may change."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
