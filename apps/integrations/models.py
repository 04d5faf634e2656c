"""Integrations: inbound connections and their raw messages, partner mappings, and
outbound webhook endpoints with their delivery outbox. Fields and constraints only;
the workflows are in services."""

from __future__ import annotations

import secrets

from django.db import models

from apps.accounts.models import Organization
from apps.dispatch.models import Order
from apps.events.models import Event


def _token() -> str:
    return secrets.token_urlsafe(18)


class ConnectionKind(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    GENERIC = "generic", "Generic JSON (mapping)"


class Mapping(models.Model):
    """A partner's JSON shape described as data. Every change is a new version; the
    connection always applies the newest, and each message records the one it used."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="mappings")
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="mapping_org_name_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def current(self) -> MappingVersion | None:
        return self.versions.order_by("-version").first()


class MappingVersion(models.Model):
    mapping = models.ForeignKey(Mapping, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    spec = models.JSONField()
    created_by = models.CharField(max_length=64, default="system")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mapping", "version"]
        constraints = [models.UniqueConstraint(fields=["mapping", "version"], name="mapping_version_unique")]

    def __str__(self) -> str:
        return f"{self.mapping} v{self.version}"


class Connection(models.Model):
    """One store or partner system that sends us orders, and how to check it is them.

    The URL token only routes the request; the HMAC secret proves the sender."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="connections")
    kind = models.CharField(max_length=20, choices=ConnectionKind.choices)
    name = models.CharField(max_length=120)
    token = models.CharField(max_length=40, unique=True, default=_token, editable=False)
    # Orders from this connection carry this source, e.g. "shopify:acme-shop".
    source = models.CharField(max_length=64)
    store = models.CharField(max_length=200, blank=True, help_text="Shop domain or store URL, as the partner sends it")
    secret = models.CharField(max_length=200)
    # Shopify keeps signing with the old secret for up to an hour after a rotation.
    previous_secret = models.CharField(max_length=200, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    mapping = models.ForeignKey(Mapping, null=True, blank=True, on_delete=models.PROTECT, related_name="connections")
    # default_country, phone_region, weight_unit (kg, g, lb, oz), dimension_unit (cm, m, mm, in), timezone, hub
    options = models.JSONField(default=dict, blank=True)
    # Credentials for pulling recent orders (reconciliation): {"base_url", "token"} or {"key", "secret"}.
    api = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "source"], name="connection_org_source_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class InboundStatus(models.TextChoices):
    RECEIVED = "received", "Received, not processed yet"
    PROCESSED = "processed", "Processed"
    STALE = "stale", "Older than what we hold; recorded, not applied"
    IGNORED = "ignored", "Nothing to do (topic we do not act on)"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


class InboundMessage(models.Model):
    """One verified request, exactly as it arrived. Nothing unverified is ever stored."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="inbound_messages")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="messages")
    received_at = models.DateTimeField(auto_now_add=True)
    topic = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    # SHA-256 of the body as received (hex): what stays of it once retention has purged
    # the raw body and headers (personal data), so the audit record can still prove
    # which bytes were received.
    body_sha256 = models.CharField(max_length=64, blank=True)
    raw_purged_at = models.DateTimeField(null=True, blank=True)
    # The partner's idempotency key (webhook/event id, or order + modification time);
    # NULL when the message carries none, in which case it is never deduplicated.
    dedupe_key = models.CharField(max_length=255, null=True, blank=True)
    duplicates = models.PositiveIntegerField(default=0, help_text="Redeliveries, acknowledged and dropped")
    status = models.CharField(max_length=20, choices=InboundStatus.choices, default=InboundStatus.RECEIVED)
    # In the "needs attention" queue: not applied (status needs_attention), or applied
    # with a warning a person should look at (e.g. no coordinates).
    attention = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)
    # Corrections typed in by a person, applied over the normalized order on reprocess.
    overrides = models.JSONField(default=dict, blank=True)
    mapping_version = models.ForeignKey(MappingVersion, null=True, blank=True, on_delete=models.SET_NULL)
    external_id = models.CharField(max_length=128, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_messages")
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "dedupe_key"], name="inbound_connection_dedupe_unique"),
        ]
        indexes = [
            models.Index(fields=["org", "attention", "id"], name="inbound_org_attention_idx"),
            models.Index(fields=["status", "received_at"], name="inbound_status_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.topic} #{self.pk} ({self.status})"


class ExternalOrder(models.Model):
    """Which partner order an order is, and the partner's newest modification time we applied,
    so a retried older payload is recognised and not applied."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="external_orders")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="external")
    external_id = models.CharField(max_length=128)
    source_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="external_order_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.external_id}"


class ExternalFulfillmentOrder(models.Model):
    """Which partner order a Shopify fulfillment order belongs to: its webhooks name only
    the fulfillment order. Learned before or after the order itself arrives, so it links
    by the partner's order id rather than to our order."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="fulfillment_orders")
    fulfillment_order_id = models.CharField(max_length=64)
    external_id = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "fulfillment_order_id"], name="external_fulfillment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.fulfillment_order_id} -> {self.external_id}"


# --- outbound -----------------------------------------------------------------


class Taxonomy(models.TextChoices):
    LASTMILE = "lastmile", "Lastmile event types"
    AFTERSHIP = "aftership", "AfterShip tags"
    EASYPOST = "easypost", "EasyPost tracker statuses"


class WebhookEndpoint(models.Model):
    """A partner URL subscribed to event types, with its signing secret(s)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Event types or prefixes ending in ".*", e.g. ["order.*", "stop.completed"].
    event_types = models.JSONField(default=list)
    secret = models.CharField(max_length=120)
    previous_secret = models.CharField(max_length=120, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    taxonomy = models.CharField(max_length=20, choices=Taxonomy.choices, default=Taxonomy.LASTMILE)
    # The partner's own codes: {"order.delivered": "DLV", ...}; wins over the taxonomy.
    status_mapping = models.JSONField(default=dict, blank=True)
    # Created by a shipper's key: only events of that source's orders go to it.
    order_source = models.CharField(max_length=64, blank=True)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead letter (gave up)"


class WebhookDelivery(models.Model):
    """The outbox row: written in the event's transaction, sent after commit by a worker."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="webhook_deliveries")
    # Stable across retries and replays: the receiver's idempotency key.
    webhook_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    # Deliveries with the same key to the same endpoint go out in sequence order.
    ordering_key = models.CharField(max_length=80)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Set while a worker sends; a claim older than the timeout is a crashed worker's.
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_endpoint_event_unique")]
        indexes = [
            models.Index(fields=["endpoint", "ordering_key", "status", "id"], name="delivery_order_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.event_type} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=1000, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.attempted_at}: {self.status_code or self.error}"

