"""Summary tables for reports, maintained from the dispatch tables (see summary.py).

``DailyStats`` holds the attempt counters per organization, day, hub, driver and order
source: every KPI that is a count or a ratio of counts is a sum over its rows, so a
year of history answers from a few hundred thousand small rows instead of millions of
stops. ``RouteStats`` holds one row per worked route (routes carry several partners'
parcels, so their figures cannot be split by source). ``ReportDay`` is the unit of
maintenance: a day is rebuilt whole, under its row's lock, when it is stale.
"""

from __future__ import annotations

from django.db import models

from apps.accounts.models import Organization
from apps.dispatch.models import Driver, Hub, Route


class ReportDay(models.Model):
    """One organization-day of the summary: whether it needs a rebuild, and the lock
    that makes two rebuilds of the same day take turns (delete-and-insert twice at
    once would double its rows)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="report_days")
    day = models.DateField()
    stale = models.BooleanField(default=True)
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "day"], name="reportday_org_day_unique")]
        indexes = [models.Index(fields=["stale", "day"], name="reportday_stale_idx")]

    def __str__(self) -> str:
        return f"{self.org_id} {self.day}{' (stale)' if self.stale else ''}"


class Grain(models.TextChoices):
    """Each day is stored at three grains, so a query reads the fewest rows that can
    answer it: about 750 rows a day per hub x driver x source at 5,000 orders, 150 per
    hub x driver, 15 per hub x source. A year of the full grain is ~275,000 rows; most
    questions (no driver, or no source) read the two smaller ones."""

    FULL = "full", "hub x driver x source"
    DRIVER = "driver", "hub x driver (every source)"
    SOURCE = "source", "hub x source (every driver)"


class DailyStats(models.Model):
    """Counters of one (org, day, hub, driver, source) at one grain (``source`` is ""
    at the driver grain, ``driver`` is null at the source grain). At the full and driver
    grains, rows with no driver hold the day's cancellations (an order cancelled before
    any attempt has no driver)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    grain = models.CharField(max_length=8, choices=Grain.choices)
    day = models.DateField()
    hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=64)
    attempts = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failed_recipient_absent = models.PositiveIntegerField(default=0)
    failed_refused = models.PositiveIntegerField(default=0)
    failed_address_not_found = models.PositiveIntegerField(default=0)
    failed_access_denied = models.PositiveIntegerField(default=0)
    failed_damaged = models.PositiveIntegerField(default=0)
    failed_unsafe = models.PositiveIntegerField(default=0)
    failed_other = models.PositiveIntegerField(default=0)
    first_attempts = models.PositiveIntegerField(default=0)
    first_attempt_delivered = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    windowed = models.PositiveIntegerField(default=0)
    on_time = models.PositiveIntegerField(default=0)
    early = models.PositiveIntegerField(default=0)
    late = models.PositiveIntegerField(default=0)
    pod_required = models.PositiveIntegerField(default=0)
    pod_complete = models.PositiveIntegerField(default=0)
    eta_samples = models.PositiveIntegerField(default=0)
    eta_error_sum_s = models.BigIntegerField(default=0)
    eta_h0 = models.PositiveIntegerField(default=0)
    eta_h1 = models.PositiveIntegerField(default=0)
    eta_h2 = models.PositiveIntegerField(default=0)
    eta_h3 = models.PositiveIntegerField(default=0)
    eta_h4 = models.PositiveIntegerField(default=0)
    eta_h5 = models.PositiveIntegerField(default=0)
    eta_h6 = models.PositiveIntegerField(default=0)
    eta_h7 = models.PositiveIntegerField(default=0)
    eta_h8 = models.PositiveIntegerField(default=0)
    eta_h9 = models.PositiveIntegerField(default=0)
    eta_h10 = models.PositiveIntegerField(default=0)
    eta_h11 = models.PositiveIntegerField(default=0)
    eta_h12 = models.PositiveIntegerField(default=0)
    eta_h13 = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["org", "grain", "day"], name="dailystats_org_grain_day_idx"),
            models.Index(fields=["org", "grain", "driver", "day"], name="dailystats_org_driver_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} hub {self.hub_id} driver {self.driver_id} {self.source}"


class RouteStats(models.Model):
    """One worked route: its attempts, hours on the road, and planned vs actual distance
    and drive time (actual only where location history exists)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    route = models.OneToOneField(Route, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    hub = models.ForeignKey(Hub, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    work_s = models.PositiveIntegerField(null=True, blank=True)
    planned_m = models.PositiveIntegerField(default=0)
    planned_s = models.PositiveIntegerField(default=0)
    actual_m = models.PositiveIntegerField(null=True, blank=True)
    actual_s = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "day"], name="routestats_org_day_idx")]

    def __str__(self) -> str:
        return f"route {self.route_id} {self.day}"
