from __future__ import annotations

from dataclasses import dataclass

from .models import ApiClient, Organization, Role


@dataclass(frozen=True)
class Actor:
    """Who is acting, for which organization, with which scopes. Every service and
    selector that touches tenant data receives one (or its org)."""

    org: Organization
    scopes: frozenset[str]
    user_id: int | None = None
    role: str | None = None
    api_client: ApiClient | None = None
    driver_id: int | None = None

    @property
    def label(self) -> str:
        if self.api_client is not None:
            return f"api_client:{self.api_client.pk}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return "system"

    @property
    def order_source(self) -> str:
        """The only order source this actor may see and create ("": no such limit)."""
        return self.api_client.order_source if self.api_client is not None else ""

    @property
    def is_driver(self) -> bool:
        return self.role == Role.DRIVER

    def can(self, scope: str) -> bool:
        return scope in self.scopes


def system_actor(org: Organization) -> Actor:
    from .roles import ALL_SCOPES

    return Actor(org=org, scopes=ALL_SCOPES)
