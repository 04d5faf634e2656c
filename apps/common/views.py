"""Base for tenant-scoped API views: resolves the actor and finds objects through selectors."""

from __future__ import annotations

from typing import Any

from rest_framework import viewsets
from rest_framework.exceptions import NotFound

from apps.accounts.actor import Actor
from apps.accounts.permissions import actor_for_request
from apps.accounts.throttling import ApiClientRateThrottle

from .pagination import IdCursorPagination


class ScopedViewSet(viewsets.GenericViewSet):
    """Subclasses set ``scope_resource`` and ``queryset = Model.objects.none()`` (for
    the schema) and define ``scoped()`` with a selector that starts from
    ``self.actor``'s organization."""

    pagination_class = IdCursorPagination
    throttle_classes = [ApiClientRateThrottle]
    scope_resource: str = ""
    scope_map: dict[str, str] = {}

    lookup_value_regex = r"[0-9]+"

    @property
    def actor(self) -> Actor:
        return actor_for_request(self.request)

    def scoped(self) -> Any:
        """The rows this actor may see; every subclass defines it through a selector."""
        return self.queryset.none()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset  # schema generation: no request, no tenant
        return self.scoped()

    def get_object(self) -> Any:
        raw = str(self.kwargs.get("pk", ""))
        if not (raw.isascii() and raw.isdigit()) or int(raw) > 2**63 - 1:
            raise NotFound("Not found.")
        obj = self.get_queryset().filter(pk=int(raw)).first()
        if obj is None:
            raise NotFound("Not found.")
        return obj
