from __future__ import annotations

from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from .actor import Actor
from .authentication import ApiClientPrincipal
from .roles import ROLE_SCOPES


def actor_for_request(request: Request) -> Actor:
    """Resolve (and cache on the request) who is acting and for which tenant."""
    cached = getattr(request, "_lastmile_actor", None)
    if cached is not None:
        return cached
    user = request.user
    if user is None or not user.is_authenticated:
        raise exceptions.NotAuthenticated("Log in or send an API key.")
    if isinstance(user, ApiClientPrincipal):
        client = user.client
        actor = Actor(org=client.org, scopes=frozenset(client.scopes), api_client=client)
    else:
        membership = getattr(user, "membership", None)
        if membership is None:
            raise exceptions.PermissionDenied("This account does not belong to an organization.")
        driver = getattr(user, "driver_profile", None)
        actor = Actor(
            org=membership.org,
            scopes=ROLE_SCOPES[membership.role],
            user_id=user.pk,
            role=membership.role,
            driver_id=driver.pk if driver is not None else None,
        )
    request._lastmile_actor = actor  # type: ignore[attr-defined]
    return actor


class HasScope(permissions.BasePermission):
    """Each view names its resource (``scope_resource = "orders"``); reads need
    ``orders:read``, writes ``orders:write``. A view may override per action
    with ``scope_map = {"cancel": "orders:write"}``, or per action and method with
    ``{"versions:post": "integrations:manage"}`` (checked first)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        resource = getattr(view, "scope_resource", None)
        if resource is None:
            return False
        actor = actor_for_request(request)
        if request.method not in view.allowed_methods:
            return True  # let the view answer 405; the method does nothing here to protect
        action = getattr(view, "action", None)
        scope_map = getattr(view, "scope_map", {})
        if f"{action}:{request.method.lower()}" in scope_map:
            needed = scope_map[f"{action}:{request.method.lower()}"]
        elif action in scope_map:
            needed = scope_map[action]
        else:
            needed = f"{resource}:{'read' if request.method in permissions.SAFE_METHODS else 'write'}"
        if not actor.can(needed):
            raise exceptions.PermissionDenied(f"This action needs the '{needed}' scope.")
        return True
