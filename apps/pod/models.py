"""Proof of delivery: the media a driver captured, the record that ties it to a stop,
the requirements a completion must meet, and the driver actions that made it happen.
Fields and constraints only; the workflows are in services.py."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Organization
from apps.dispatch.models import Driver, Order, Stop


class MediaKind(models.TextChoices):
    PHOTO = "photo", "Photo"
    SIGNATURE = "signature", "Signature"


class PodMedia(models.Model):
    """One uploaded image. The original bytes are kept unchanged as evidence, named by
    their SHA-256; browsers only ever see ``display`` and ``thumb``, re-encoded from
    the decoded pixels with no metadata. (org, sha256) makes uploads idempotent."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="pod_media")
    kind = models.CharField(max_length=16, choices=MediaKind.choices)
    sha256 = models.CharField(max_length=64)
    # The format Pillow found in the bytes (JPEG, PNG, WEBP), never the file name's.
    original_format = models.CharField(max_length=8)
    original_bytes = models.PositiveIntegerField()
    original = models.CharField(max_length=255, help_text="Storage name of the original bytes")
    display = models.CharField(max_length=255, help_text="Storage name of the re-encoded display copy")
    thumb = models.CharField(max_length=255, help_text="Storage name of the re-encoded thumbnail")
    display_content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    stop = models.ForeignKey(Stop, null=True, blank=True, on_delete=models.SET_NULL, related_name="pod_media",
                             help_text="The stop the driver said it was for, if any")
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the retention purge (apps/pod/retention.py) deleted the files; the row, its
    # SHA-256, size and dimensions stay as the record of what was delivered.
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "sha256"], name="pod_media_org_sha256_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.sha256[:12]}"


class PodSettings(models.Model):
    """An organization's POD media retention. An organization without a row, or with an
    empty value, keeps media for ``settings.POD_MEDIA_RETENTION_DAYS``."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True, related_name="pod_settings")
    media_retention_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Photos and signatures are deleted this many days after upload; the POD record and the "
                  "files' SHA-256 are kept. Empty: the platform default.")

    class Meta:
        verbose_name_plural = "POD settings"
        constraints = [models.CheckConstraint(condition=models.Q(media_retention_days__gte=1),
                                              name="podsettings_retention_at_least_a_day")]

    def __str__(self) -> str:
        return f"POD settings of {self.org_id}"


class ProofOfDelivery(models.Model):
    """What a driver captured when completing a stop. Append-only: a second completion
    of the same stop adds a record and a dispatcher exception, never an overwrite."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="pods")
    stop = models.ForeignKey(Stop, on_delete=models.CASCADE, related_name="pods")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="pods")
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.SET_NULL, related_name="pods")
    action_key = models.UUIDField(help_text="The driver action that captured it")
    photos = models.ManyToManyField(PodMedia, blank=True, related_name="pods_as_photo")
    signature = models.ForeignKey(PodMedia, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="pods_as_signature")
    recipient_name = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    # None: no PIN was asked for; True: the PIN the customer gave matched.
    pin_verified = models.BooleanField(null=True, blank=True)
    barcode = models.CharField(max_length=200, blank=True)
    age_verified = models.BooleanField(default=False)
    device_time = models.DateTimeField(null=True, blank=True, help_text="The phone's clock when captured")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the server received it")
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    distance_m = models.FloatField(null=True, blank=True, help_text="Capture point to the delivery address")
    # e.g. ["far_from_address", "no_location", "double_completion", "completed_offline"]
    flags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "action_key"], name="pod_org_action_unique")]
        indexes = [models.Index(fields=["org", "order"], name="pod_org_order_idx")]

    def __str__(self) -> str:
        return f"POD {self.pk} of stop {self.stop_id}"


class PodPolicy(models.Model):
    """Default completion requirements: one row per organization (``source`` empty)
    and optionally one per partner source (``shopify:acme-shop``). An order's own
    ``pod_requirements`` add to these; the strictest value wins."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="pod_policies")
    source = models.CharField(max_length=64, blank=True, help_text="Empty: the organization's default")
    min_photos = models.PositiveSmallIntegerField(default=0)
    signature = models.BooleanField(default=False)
    recipient_name = models.BooleanField(default=False)
    notes = models.BooleanField(default=False)
    pin = models.BooleanField(default=False)
    barcode = models.BooleanField(default=False)
    min_age = models.PositiveSmallIntegerField(default=0, help_text="0: no age check")
    # Only on the organization's default row: may the tracking page show delivery photos?
    share_photos_with_tracking = models.BooleanField(default=False)

    class Meta:
        ordering = ["org", "source"]
        constraints = [models.UniqueConstraint(fields=["org", "source"], name="pod_policy_org_source_unique")]
        verbose_name_plural = "POD policies"

    def __str__(self) -> str:
        return f"POD policy {self.source or 'default'} ({self.org})"


class ActionKind(models.TextChoices):
    ARRIVE = "arrive", "Arrive"
    COMPLETE = "complete", "Complete"
    FAIL = "fail", "Fail"


class DriverAction(models.Model):
    """A driver action as the app recorded it, keyed by the UUID the phone generated.
    The first result is stored: a retry of the same key gets it back unchanged, so an
    action synced three times over a flaky network takes effect once. Kept as long as
    the stop (no TTL): a phone may come back after days offline."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="driver_actions")
    key = models.UUIDField()
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions")
    kind = models.CharField(max_length=16, choices=ActionKind.choices)
    stop = models.ForeignKey(Stop, null=True, blank=True, on_delete=models.SET_NULL, related_name="driver_actions")
    # Hash of the request: the same key with other content is a client bug, answered 409.
    request_hash = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, help_text="applied, or exception (sent to the dispatcher)")
    response = models.JSONField()
    device_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "key"], name="driver_action_org_key_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class ExceptionKind(models.TextChoices):
    DOUBLE_COMPLETION = "double_completion", "Stop completed twice"
    COMPLETED_AFTER_CLOSE = "completed_after_close", "Completed after the order was closed"


class DispatchException(models.Model):
    """Something a dispatcher must look at: two completions of one delivery, a completion
    arriving after the order was cancelled. Nothing is overwritten; both sides are kept."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="dispatch_exceptions")
    kind = models.CharField(max_length=32, choices=ExceptionKind.choices)
    stop = models.ForeignKey(Stop, on_delete=models.CASCADE, related_name="exceptions")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="exceptions")
    pod = models.ForeignKey(ProofOfDelivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.ForeignKey(DriverAction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["org", "resolved_at"], name="dispatch_exc_org_open_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(message=""), name="dispatch_exception_has_message"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on stop {self.stop_id}"
