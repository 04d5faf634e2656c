"""Plans (a day's draft or a replan's proposal) and the exceptions that trigger replans.

Fields and constraints only; the workflows live in services.py and replans.py.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.accounts.models import Organization
from apps.dispatch.models import Driver, Hub, Order, Route, Stop


class PlanKind(models.TextChoices):
    DAY = "day", "Plan the day"
    REPLAN = "replan", "Re-plan after exceptions"


class PlanStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    READY = "ready", "Ready for review"
    FAILED = "failed", "Failed"
    PUBLISHED = "published", "Published"  # applied, for a replan
    DISCARDED = "discarded", "Discarded"


class PlanRun(models.Model):
    """One optimization job and its result.

    ``result`` is the draft: routes (driver, vehicle, ordered orders with planned
    arrivals), unassigned orders with reasons, totals. Nothing on the road changes
    until it is published (day) or applied (replan), through the route services.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="plan_runs")
    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="plan_runs")
    date = models.DateField()
    kind = models.CharField(max_length=10, choices=PlanKind.choices, default=PlanKind.DAY)
    status = models.CharField(max_length=12, choices=PlanStatus.choices, default=PlanStatus.QUEUED)
    # Where the job is and how it is doing, for the console's progress bar:
    # {"elapsed_s", "time_left_s", "best_cost", "engine"}.
    stage = models.CharField(max_length=20, default="queued")
    progress = models.JSONField(default=dict, blank=True)
    time_limit_s = models.FloatField(default=5.0)
    driver_ids = models.JSONField(default=list, blank=True, help_text="Only these drivers (empty: all of the hub)")
    order_ids = models.JSONField(default=list, blank=True, help_text="Only these orders (empty: every open order of the day)")
    route_ids = models.JSONField(default=list, blank=True, help_text="A replan: the routes it may change")
    result = models.JSONField(default=dict, blank=True)
    diff = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.CharField(max_length=64, default="system")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["org", "date", "id"], name="planrun_org_date_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(time_limit_s__gt=0), name="planrun_time_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} plan {self.pk} for {self.date} ({self.status})"


class ExceptionKind(models.TextChoices):
    FAILED_DELIVERY = "failed_delivery", "Failed delivery"
    VEHICLE_BREAKDOWN = "vehicle_breakdown", "Vehicle breakdown"
    DRIVER_UNAVAILABLE = "driver_unavailable", "Driver unavailable"
    URGENT_ORDER = "urgent_order", "Urgent order added"
    LATE_RISK = "late_risk", "Driver running late"
    ORDER_CANCELLED = "order_cancelled", "Order cancelled"
    ORDER_CHANGED = "order_changed", "Order address or window changed"


class ExceptionStatus(models.TextChoices):
    OPEN = "open", "Open"  # waiting for its replan
    PROPOSED = "proposed", "Replan proposed"
    APPLIED = "applied", "Replan applied"
    DISMISSED = "dismissed", "Dismissed"
    FAILED = "failed", "Replan failed (plan unchanged)"


class OpsException(models.Model):
    """Something that went wrong during the day and needs the plan to change."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="ops_exceptions")
    kind = models.CharField(max_length=24, choices=ExceptionKind.choices)
    status = models.CharField(max_length=12, choices=ExceptionStatus.choices, default=ExceptionStatus.OPEN)
    route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stop = models.ForeignKey(Stop, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    details = models.JSONField(default=dict, blank=True)
    replan = models.ForeignKey(PlanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="exceptions")
    reported_by = models.CharField(max_length=64, default="system")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["org", "status", "id"], name="opsexc_org_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.status})"


class FailedDeliveryPolicy(models.TextChoices):
    REATTEMPT = "reattempt", "Re-attempt later today if the window allows"
    RETURN = "return", "Bring it back to the hub (reschedule)"


class PlanningPolicy(models.Model):
    """Per organization: what a replan may do on its own."""

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="planning_policy")
    auto_apply = models.BooleanField(default=False, help_text="Apply replans without waiting for a dispatcher")
    failed_delivery = models.CharField(max_length=12, choices=FailedDeliveryPolicy.choices,
                                       default=FailedDeliveryPolicy.REATTEMPT)
    replan_time_limit_s = models.FloatField(default=2.0)
    # A route's exceptions arriving within this window share one replan.
    coalesce_s = models.FloatField(default=1.0)

    def __str__(self) -> str:
        return f"planning policy of {self.org}"


class PinKind(models.TextChoices):
    DRIVER = "driver", "Stays with its driver"
    SEQUENCE = "sequence", "Stays with its driver, in its place in the sequence"


class StopPin(models.Model):
    """A dispatcher's promise that a replan will not move this stop."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    stop = models.OneToOneField(Stop, on_delete=models.CASCADE, related_name="pin")
    kind = models.CharField(max_length=10, choices=PinKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} pin on stop {self.stop_id}"
