"""A large fleet, made fast: bulk inserts, no password hashing (nobody logs in as them)."""

from __future__ import annotations

from datetime import time

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.dispatch.models import Driver
from apps.tracking.models import DriverPosition


def large_fleet_create(org, drivers: int, *, positions: bool = True) -> list[Driver]:
    """``drivers`` on-duty drivers of ``org``, each with a position just now if asked."""
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"{org.slug}-fleet-{i}", password="!") for i in range(drivers)],
                                     batch_size=1000)
    Membership.objects.bulk_create([Membership(user=u, org=org, role=Role.DRIVER) for u in users], batch_size=1000)
    rows = Driver.objects.bulk_create([Driver(org=org, user=u, name=f"Driver {i} of a very large fleet",
                                              shift_start=time(6), shift_end=time(22), on_duty=True)
                                       for i, u in enumerate(users)], batch_size=1000)
    if positions:
        now = timezone.now()
        DriverPosition.objects.bulk_create([
            DriverPosition(driver=d, org=org, lat=52.5, lng=13.4, accuracy_m=5, speed_mps=8.5, heading=180,
                           device_time=now, last_ping_at=now) for d in rows], batch_size=1000)
    return rows
