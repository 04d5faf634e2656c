"""The one delivery data model. Fields, constraints and small properties only;
every workflow lives in services."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Organization


class Place(models.Model):
    """Address components plus coordinates, shared by hubs and orders."""

    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def address_text(self) -> str:
        parts = [self.address_line1, self.address_line2, f"{self.postal_code} {self.city}".strip(), self.country]
        return ", ".join(p for p in parts if p)


class Hub(Place):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="hubs")
    name = models.CharField(max_length=120)
    code = models.CharField(max_length=20)
    timezone = models.CharField(max_length=64)
    # {"mon": [["07:00", "19:00"]], ...}; a missing day is closed.
    opening_hours = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "code"], name="hub_org_code_unique")]
        indexes = [models.Index(fields=["org", "id"], name="hub_org_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class VehicleType(models.TextChoices):
    BIKE = "bike", "Bicycle"
    CARGO_BIKE = "cargo_bike", "Cargo bike"
    SCOOTER = "scooter", "Scooter"
    CAR = "car", "Car"
    VAN = "van", "Van"
    TRUCK = "truck", "Truck"


class Vehicle(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="vehicles")
    name = models.CharField(max_length=120)
    plate = models.CharField(max_length=20, blank=True)
    type = models.CharField(max_length=20, choices=VehicleType.choices, default=VehicleType.VAN)
    capacity_weight_kg = models.DecimalField(max_digits=9, decimal_places=2)
    capacity_volume_l = models.DecimalField(max_digits=9, decimal_places=2)
    capacity_parcels = models.PositiveIntegerField()
    skills = models.JSONField(default=list, blank=True, help_text='e.g. ["refrigerated", "tail_lift"]')
    home_hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="vehicles")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "plate"], condition=~Q(plate=""), name="vehicle_org_plate_unique"),
        ]
        indexes = [models.Index(fields=["org", "id"], name="vehicle_org_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.plate}".strip()


class Driver(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="drivers")
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="driver_profile")
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164, e.g. +4930123456")
    shift_start = models.TimeField()
    shift_end = models.TimeField()
    home_hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="drivers")
    current_vehicle = models.ForeignKey(Vehicle, null=True, blank=True, on_delete=models.SET_NULL, related_name="drivers")
    on_duty = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["org", "id"], name="driver_org_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name else ""


class OrderState(models.TextChoices):
    CREATED = "created", "Created"
    PLANNED = "planned", "Planned"
    DISPATCHED = "dispatched", "Dispatched"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    RETURNED = "returned", "Returned"


class OrderOutcome(models.TextChoices):
    NONE = "", "None"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class FailureReason(models.TextChoices):
    RECIPIENT_ABSENT = "recipient_absent", "Recipient absent"
    REFUSED = "refused", "Refused"
    ADDRESS_NOT_FOUND = "address_not_found", "Address not found"
    ACCESS_DENIED = "access_denied", "Access denied"
    DAMAGED = "damaged", "Damaged"
    UNSAFE = "unsafe", "Unsafe"
    OTHER = "other", "Other"


class GeocodeConfidence(models.TextChoices):
    """How much we trust the coordinates. Low-confidence stops are flagged for the dispatcher."""

    EXACT = "exact", "Exact (rooftop or supplied by the shipper)"
    APPROXIMATE = "approximate", "Approximate (street or postcode)"
    LOW = "low", "Low (city level or guessed)"
    NONE = "none", "Not geocoded"


class PodRequirement(models.TextChoices):
    PHOTO = "photo", "Photo"
    SIGNATURE = "signature", "Signature"
    RECIPIENT_NAME = "recipient_name", "Recipient name"
    PIN = "pin", "PIN"
    BARCODE = "barcode", "Barcode scan"
    NOTES = "notes", "Notes"


class Priority(models.IntegerChoices):
    LOW = 0, "Low"
    NORMAL = 1, "Normal"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class Order(Place):
    """A shipment to deliver. (org, source, external_id) is the ingest idempotency key."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="orders")
    source = models.CharField(max_length=64, default="api", help_text="Where the order came from: api, csv, shopify:<shop>, …")
    external_id = models.CharField(max_length=128, help_text="The order's id in its source system")
    reference = models.CharField(max_length=128, blank=True, help_text="Human reference printed on labels")
    hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")

    customer_name = models.CharField(max_length=200)
    customer_phone = models.CharField(max_length=32, blank=True)
    customer_email = models.EmailField(blank=True)
    geocode_confidence = models.CharField(max_length=16, choices=GeocodeConfidence.choices, default=GeocodeConfidence.NONE)

    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    service_time_s = models.PositiveIntegerField(default=180)
    instructions = models.TextField(blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    pod_requirements = models.JSONField(default=list, blank=True)
    # Counts the list above cannot say: more than one photo, an ID check of the recipient.
    # The organization's and partner's policies still apply; the strictest value wins.
    pod_min_photos = models.PositiveSmallIntegerField(default=0)
    pod_min_age = models.PositiveSmallIntegerField(default=0, help_text="0: no age check")
    required_skills = models.JSONField(default=list, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)

    # Totals over items, kept in step by the services: the optimizer and the
    # capacity checks read them for thousands of orders at a time.
    total_weight_kg = models.DecimalField(max_digits=9, decimal_places=2, default=0)
    total_volume_l = models.DecimalField(max_digits=9, decimal_places=2, default=0)
    parcel_count = models.PositiveIntegerField(default=0)

    state = models.CharField(max_length=20, choices=OrderState.choices, default=OrderState.CREATED)
    outcome = models.CharField(max_length=16, choices=OrderOutcome.choices, default=OrderOutcome.NONE, blank=True)
    failure_reason = models.CharField(max_length=32, choices=FailureReason.choices, blank=True)
    failure_notes = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Hash of the normalized input: a re-post with the same key and the same hash
    # is a harmless retry; the same key with another hash is a conflict.
    content_hash = models.CharField(max_length=64, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "source", "external_id"], name="order_org_source_external_unique"),
            models.CheckConstraint(
                condition=Q(window_start__isnull=True) | Q(window_end__isnull=True) | Q(window_end__gt=models.F("window_start")),
                name="order_window_ordered",
            ),
            models.CheckConstraint(condition=Q(lat__isnull=True) | Q(lat__gte=-90, lat__lte=90), name="order_lat_range"),
            models.CheckConstraint(condition=Q(lng__isnull=True) | Q(lng__gte=-180, lng__lte=180), name="order_lng_range"),
            models.CheckConstraint(
                condition=Q(outcome="") | Q(state__in=["completed", "returned"]),
                name="order_outcome_only_when_completed",
            ),
        ]
        indexes = [
            models.Index(fields=["org", "state", "id"], name="order_org_state_idx"),
            models.Index(fields=["org", "window_start"], name="order_org_window_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference or self.external_id} ({self.customer_name})"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    weight_kg = models.DecimalField(max_digits=9, decimal_places=3, default=0, help_text="per unit")
    volume_l = models.DecimalField(max_digits=9, decimal_places=3, default=0, help_text="per unit")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"


class RouteStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class Route(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="routes")
    # RESTRICT, not PROTECT: a hub, driver or vehicle with routes cannot be deleted
    # on its own, but deleting the whole organization (which deletes its routes too) works.
    hub = models.ForeignKey(Hub, on_delete=models.RESTRICT, related_name="routes")
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.RESTRICT, related_name="routes")
    vehicle = models.ForeignKey(Vehicle, null=True, blank=True, on_delete=models.RESTRICT, related_name="routes")
    date = models.DateField()
    name = models.CharField(max_length=120, blank=True)
    start_lat = models.FloatField()
    start_lng = models.FloatField()
    end_lat = models.FloatField()
    end_lng = models.FloatField()
    planned_start = models.DateTimeField(null=True, blank=True)
    planned_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=RouteStatus.choices, default=RouteStatus.DRAFT)
    # Bumped on every change to the stop list or order, so a driver app or console
    # holding version N knows its copy is stale when it sees N+1.
    version = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "id"]
        indexes = [
            models.Index(fields=["org", "date"], name="route_org_date_idx"),
            models.Index(fields=["driver", "date"], name="route_driver_date_idx"),
        ]

    def __str__(self) -> str:
        return self.name or f"Route {self.pk} {self.date}"


class StopKind(models.TextChoices):
    PICKUP = "pickup", "Pickup"
    DELIVERY = "delivery", "Delivery"


class StopState(models.TextChoices):
    PENDING = "pending", "Pending"
    ARRIVED = "arrived", "Arrived"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class StopOutcome(models.TextChoices):
    NONE = "", "None"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Stop(models.Model):
    """One visit of an order. A failed delivery that is re-attempted gets a new stop,
    so every attempt keeps its own history."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="stops")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="stops")
    route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="stops")
    kind = models.CharField(max_length=10, choices=StopKind.choices, default=StopKind.DELIVERY)
    sequence = models.PositiveIntegerField(default=0)
    planned_arrival = models.DateTimeField(null=True, blank=True)
    eta = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=StopState.choices, default=StopState.PENDING)
    outcome = models.CharField(max_length=16, choices=StopOutcome.choices, default=StopOutcome.NONE, blank=True)
    failure_reason = models.CharField(max_length=32, choices=FailureReason.choices, blank=True)
    notes = models.TextField(blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["route_id", "sequence", "id"]
        indexes = [
            models.Index(fields=["route", "sequence"], name="stop_route_seq_idx"),
            models.Index(fields=["org", "state"], name="stop_org_state_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome="") | Q(state="completed"), name="stop_outcome_only_when_completed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.sequence} of {self.order_id}"

    @property
    def is_open(self) -> bool:
        return self.state in (StopState.PENDING, StopState.ARRIVED)
