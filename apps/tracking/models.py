"""Driver locations and customer tracking tokens. Fields and constraints only; the
filters and the hot-position rules live in ``services.py``."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.accounts.models import Organization
from apps.dispatch.models import Driver, Order


class PingStatus(models.TextChoices):
    """What the filters made of a stored ping. Only ``shown`` pings can move a marker."""

    SHOWN = "shown", "Shown"
    INACCURATE = "inaccurate", "Inaccurate (kept, not shown)"
    JUMP = "jump", "Implausible jump (kept, not shown)"
    STALE_TIME = "stale_time", "Old device time (kept, not shown)"


class LocationPing(models.Model):
    """One position a driver's device reported: the location history. Appended by
    ``location_receive``, deleted by ``prune_locations`` after LOCATION_RETENTION_DAYS,
    never updated."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="location_pings")
    driver = models.ForeignKey(Driver, on_delete=models.CASCADE, related_name="location_pings")
    lat = models.FloatField()
    lng = models.FloatField()
    accuracy_m = models.FloatField()
    speed_mps = models.FloatField(null=True, blank=True)
    heading = models.FloatField(null=True, blank=True)
    device_time = models.DateTimeField(help_text="When the device took the fix (its clock)")
    received_at = models.DateTimeField(help_text="When the server stored it")
    status = models.CharField(max_length=16, choices=PingStatus.choices)

    class Meta:
        # No default ordering: the table is large, and every reader says what it needs
        # (a driver's history reads along the (driver, device_time) index).
        constraints = [
            # The dedupe key: a device resending its backlog must not double the history.
            models.UniqueConstraint(fields=["driver", "device_time"], name="locationping_driver_time_unique"),
            models.CheckConstraint(condition=Q(lat__gte=-90, lat__lte=90, lng__gte=-180, lng__lte=180),
                                   name="locationping_coordinates_range"),
        ]
        indexes = [models.Index(fields=["device_time"], name="locationping_time_idx")]  # retention

    def __str__(self) -> str:
        return f"{self.driver_id} at {self.device_time:%Y-%m-%d %H:%M:%S} ({self.status})"


class DriverPosition(models.Model):
    """One row per driver: the latest *shown* position (hot: every console snapshot
    reads it) and the driver's reporting state. The position only moves forward in
    device time; ``last_ping_at`` and ``stale_since`` drive the stale alert.

    The row exists before the driver has a shown position (all pings so far were
    inaccurate, or the stale check found an on-duty driver who never reported), so the
    position fields are empty until then."""

    driver = models.OneToOneField(Driver, on_delete=models.CASCADE, primary_key=True, related_name="position")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="driver_positions")
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    speed_mps = models.FloatField(null=True, blank=True)
    heading = models.FloatField(null=True, blank=True)
    device_time = models.DateTimeField(null=True, blank=True, help_text="Device time of the position shown")
    last_ping_at = models.DateTimeField(null=True, blank=True, help_text="When the server last heard a valid ping")
    stale_since = models.DateTimeField(null=True, blank=True, help_text="Set while a location-stale alert is open")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["driver_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(device_time__isnull=True) | Q(lat__isnull=False, lng__isnull=False, accuracy_m__isnull=False),
                name="driverposition_complete",
            ),
        ]
        indexes = [models.Index(fields=["org", "device_time"], name="driverposition_org_time_idx")]

    def __str__(self) -> str:
        return f"Driver {self.driver_id} at {self.lat}, {self.lng}"


class TrackingToken(models.Model):
    """The unguessable key of a customer's tracking page (``/ws/track/<token>/``).

    192 random bits (``secrets.token_urlsafe(24)``): guessing one is hopeless, so the
    token is stored as is and the link can be sent again."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tracking_tokens")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="tracking_tokens")
    token = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        # Never the whole token: it is a credential, and this shows in the admin and logs.
        return f"{self.token[:6]}… for order {self.order_id}"


class TrackingSettings(models.Model):
    """An organization's customer-facing choices: what the tracking page reveals, how
    long its links live, and how it looks. An organization without a row gets the
    defaults (``selectors.tracking_settings``)."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True,
                               related_name="tracking_settings")
    # The driver's live position is shown only when the driver is this close to the
    # customer, in stops still to make before theirs or in minutes to their ETA
    # (either is enough), and never once the order is completed.
    driver_visible_within_stops = models.PositiveSmallIntegerField(default=3)
    driver_visible_within_minutes = models.PositiveSmallIntegerField(default=15)
    link_valid_after_completion_h = models.PositiveIntegerField(
        default=72, help_text="Tracking links stop working this many hours after the order is completed")
    show_pod = models.BooleanField(default=True, help_text="Show the proof-of-delivery display copy after delivery")
    brand_name = models.CharField(max_length=120, blank=True, help_text="Defaults to the organization's name")
    logo_url = models.URLField(blank=True)
    brand_colour = models.CharField(max_length=7, default="#1f6feb", help_text="#RRGGBB")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(brand_colour__regex=r"^#[0-9A-Fa-f]{6}$"),
                                   name="trackingsettings_colour_hex"),
        ]

    def __str__(self) -> str:
        return f"Tracking settings of {self.org_id}"


class DeliveryPreferences(models.Model):
    """What the customer told us on the tracking page before the driver set off:
    instructions, a gate code, and the pin they confirmed on the map. The driver's
    route payload carries them."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, primary_key=True, related_name="preferences")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="delivery_preferences")
    instructions = models.CharField(max_length=500, blank=True)
    gate_code = models.CharField(max_length=32, blank=True)
    pin_lat = models.FloatField(null=True, blank=True)
    pin_lng = models.FloatField(null=True, blank=True)
    pin_confirmed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(pin_lat__isnull=True, pin_lng__isnull=True)
                           | Q(pin_lat__gte=-90, pin_lat__lte=90, pin_lng__gte=-180, pin_lng__lte=180)),
                name="deliverypreferences_pin_range"),
        ]

    def __str__(self) -> str:
        return f"Preferences for order {self.order_id}"


class DeliveryRating(models.Model):
    """The customer's one-tap rating after delivery: one per order, final."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, primary_key=True, related_name="rating")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="delivery_ratings")
    score = models.PositiveSmallIntegerField()
    comment = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="deliveryrating_score_range")]

    def __str__(self) -> str:
        return f"{self.score}/5 for order {self.order_id}"
