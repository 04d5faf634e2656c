"""Customer notifications: per-organization rules and settings, the messages sent (one per
trigger per order), their delivery log, opt-outs and Web Push subscriptions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.template import Template, TemplateSyntaxError

from apps.accounts.models import Organization
from apps.dispatch.models import Order


class Trigger(models.TextChoices):
    SCHEDULED = "scheduled", "Order scheduled (with its window)"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    ETA_CHANGED = "eta_changed", "ETA changed by more than the threshold"
    ARRIVING_SOON = "arriving_soon", "Arriving soon (N stops away)"
    DELIVERED = "delivered", "Delivered (with proof-of-delivery link)"
    FAILED = "failed", "Delivery failed (reason and next step)"


class Channel(models.TextChoices):
    PUSH = "push", "Web Push"
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


def _check_template(value: str) -> None:
    try:
        Template(value)
    except TemplateSyntaxError as exc:
        raise ValidationError(f"Template error: {exc}") from exc


class NotificationSettings(models.Model):
    """An organization's notification choices; defaults apply without a row."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True,
                               related_name="notification_settings")
    # In the organization's time zone. Time-critical messages (arriving soon, ETA changed)
    # falling inside are dropped; the others wait until the quiet hours end.
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="e.g. 21:00")
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="e.g. 07:00")
    eta_change_threshold_min = models.PositiveSmallIntegerField(default=15)
    arriving_soon_stops = models.PositiveSmallIntegerField(default=2)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
            | Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False), name="notificationsettings_quiet_both")]

    def __str__(self) -> str:
        return f"Notification settings of {self.org_id}"


class NotificationRule(models.Model):
    """One trigger for one organization: on or off, and its texts (Django template syntax,
    e.g. ``{{ brand }}: your order {{ reference }} arrives {{ window }}. {{ link }}``).
    A trigger without a row is on, with the default texts (``triggers.DEFAULTS``)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notification_rules")
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    enabled = models.BooleanField(default=True)
    sms_template = models.TextField(blank=True, validators=[_check_template],
                                    help_text="Also the text of push notifications. Empty: the default.")
    email_subject = models.CharField(max_length=200, blank=True, validators=[_check_template])
    email_template = models.TextField(blank=True, validators=[_check_template])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "trigger"], name="notificationrule_org_trigger_unique")]
        ordering = ["org_id", "trigger"]

    def __str__(self) -> str:
        return f"{self.trigger} ({'on' if self.enabled else 'off'})"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    RETRY = "retry", "Provider unavailable; will retry"
    UNCONFIRMED = "unconfirmed", "Outcome unknown; settling it before any resend"
    REVIEW = "review", "Outcome unknown; left for a person (never resent blindly)"
    SENT = "sent", "Accepted by the provider"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Not sent (opted out, quiet hours, no address)"


class Message(models.Model):
    """One notification to one customer. At most one per trigger per order (the unique
    constraint is the dedupe: a second trigger firing finds the row and does nothing)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="messages")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="messages")
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    recipient = models.CharField(max_length=500, blank=True, help_text="Phone, email or push endpoint")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    status_detail = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the latest call to the provider started (recorded before the call): a lookup
    # after an unknown outcome searches the provider from then on.
    attempted_at = models.DateTimeField(null=True, blank=True)
    # Lookups made to settle an unknown outcome (``services.message_send``).
    checks = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["order", "trigger"], name="message_order_trigger_unique")]
        indexes = [
            models.Index(fields=["org", "order"], name="message_org_order_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="message_due_idx"),
            models.Index(fields=["provider_id"], name="message_provider_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trigger} for order {self.order_id} ({self.status})"


class MessageLog(models.Model):
    """Every status a message went through, with the provider's words: the audit trail
    the order shows."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.status}"


class OptOut(models.Model):
    """A customer address that must not be messaged (an SMS "STOP", an email unsubscribe)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="opt_outs")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(max_length=320)
    source = models.CharField(max_length=64, blank=True, help_text="e.g. twilio:STOP")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "channel", "address"], name="optout_unique")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"


class PushSubscription(models.Model):
    """A browser that opted in on an order's tracking page (Web Push, VAPID)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="push_subscriptions")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    gone_at = models.DateTimeField(null=True, blank=True, help_text="The push service said the subscription ended")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "endpoint"], name="pushsubscription_unique")]

    def __str__(self) -> str:
        return f"Push for order {self.order_id}"
