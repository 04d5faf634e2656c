"""Location history is kept LOCATION_RETENTION_DAYS; the latest position stays."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from apps.tracking.models import DriverPosition, LocationPing
from apps.tracking.services import location_prune, location_receive
from tests.factories import DriverFactory

from .helpers import ping

pytestmark = pytest.mark.usefixtures("clock")


def history(driver, *days_ago: float) -> None:
    """Pings received on each of those days (the clock is moved back and forth)."""
    now = timezone.now()
    for days in days_ago:
        with time_machine.travel(now - timedelta(days=days), tick=False):
            location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=[ping(60)])


def days_kept(driver) -> list[int]:
    now = timezone.now()
    times = LocationPing.objects.filter(driver=driver).order_by("device_time").values_list("device_time", flat=True)
    return [round((now - t).total_seconds() / 86400) for t in times]


def test_pings_older_than_thirty_days_are_deleted(bob):
    history(bob, 45, 31, 29, 1, 0)

    deleted = location_prune()

    assert deleted == 2
    assert days_kept(bob) == [29, 1, 0]


def test_the_latest_position_is_kept_even_when_its_pings_are_pruned(bob, clock):
    history(bob, 0)
    position = DriverPosition.objects.get(driver=bob)

    clock.shift(timedelta(days=40))
    location_prune()

    assert not LocationPing.objects.exists()
    assert DriverPosition.objects.get(driver=bob).device_time == position.device_time


def test_the_retention_is_a_setting(bob, settings):
    settings.LOCATION_RETENTION_DAYS = 7
    history(bob, 8, 6)

    location_prune()

    assert days_kept(bob) == [6]


def test_every_organization_is_pruned_alike(bob, globex):
    gus = DriverFactory(org=globex)
    history(bob, 40, 2)
    history(gus, 40, 2)

    assert location_prune() == 2
    assert (days_kept(bob), days_kept(gus)) == ([2], [2])


def test_pruning_works_through_a_history_in_batches(bob, monkeypatch):
    monkeypatch.setattr("apps.tracking.services.PRUNE_BATCH", 2)
    history(bob, 50, 49, 48, 47, 46, 1)

    assert location_prune() == 5
    assert days_kept(bob) == [1]


def test_the_command_prunes_and_says_how_much(bob):
    history(bob, 35, 3)
    out = StringIO()

    call_command("prune_locations", stdout=out)

    assert out.getvalue().strip() == "Deleted 1 location pings older than 30 days."
    assert days_kept(bob) == [3]
