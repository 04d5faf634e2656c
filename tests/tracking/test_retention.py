"""Location history is purged after LOCATION_RETENTION_DAYS by the scheduled job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tracking.models import LocationPing
from apps.tracking.tasks import location_history_prune
from tests.factories import DriverFactory


@pytest.mark.django_db
def test_the_scheduled_purge_deletes_pings_past_retention_and_keeps_recent_ones(acme, settings):
    settings.LOCATION_RETENTION_DAYS = 30
    driver = DriverFactory(org=acme)
    now = timezone.now()
    for days_ago in (45, 31, 29, 1):
        at = now - timedelta(days=days_ago)
        LocationPing.objects.create(org=acme, driver=driver, device_time=at, received_at=at, lat=52.5, lng=13.4,
                                    accuracy_m=5, status="shown")

    assert location_history_prune.call() == 2
    kept = sorted((now - p.device_time).days for p in LocationPing.objects.all())
    assert kept == [1, 29]
