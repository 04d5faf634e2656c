from __future__ import annotations

from django.conf import settings
from django.db import models


class Organization(models.Model):
    """A tenant: a carrier or shipper running its own deliveries. Every row below hangs off one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    DISPATCHER = "dispatcher", "Dispatcher"
    DRIVER = "driver", "Driver"


class Membership(models.Model):
    """A person's place in one organization. One organization per user keeps every
    request's tenant unambiguous; a person working for two carriers has two logins."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.role} @ {self.org})"


class Scope(models.TextChoices):
    HUBS_READ = "hubs:read"
    HUBS_WRITE = "hubs:write"
    FLEET_READ = "fleet:read"
    FLEET_WRITE = "fleet:write"
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"
    ROUTES_READ = "routes:read"
    ROUTES_WRITE = "routes:write"
    STOPS_READ = "stops:read"
    STOPS_WRITE = "stops:write"
    EVENTS_READ = "events:read"
    INTEGRATIONS_READ = "integrations:read"
    INTEGRATIONS_WRITE = "integrations:write"
    INTEGRATIONS_MANAGE = "integrations:manage"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    REPORTS_READ = "reports:read"
    ACCOUNTS_READ = "accounts:read"
    ACCOUNTS_WRITE = "accounts:write"


class ApiClient(models.Model):
    """A partner system (shop, OMS, ERP) calling the API with a key.

    The key is shown once at creation; only its SHA-256 is stored. Keys carry 256
    random bits, so a fast hash is enough: there is nothing to brute-force.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_clients")
    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    # A shipper's key: it creates orders with this source only, and sees only those orders
    # and its own webhook endpoints. Empty: the whole organization (within its scopes).
    order_source = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
