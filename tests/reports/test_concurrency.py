"""Two workers rebuilding the same day at once (PostgreSQL in CI): the day's row lock
makes them take turns, so the summary never holds a day twice."""

from __future__ import annotations

import pytest

from apps.reports.models import DailyStats, ReportDay, RouteStats
from apps.reports.summary import summary_rebuild_day
from tests.dispatch.test_concurrency import _race
from tests.reports.conftest import D1, build_history


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("known_day", [True, False], ids=["day-known", "day-new"])
@pytest.mark.parametrize("attempt", range(3))
def test_two_rebuilds_of_one_day_at_once_leave_it_once(acme, acme_hub, acme_van, bob, attempt, known_day):
    build_history(acme, acme_hub, acme_van, bob)  # its events commit and mark the day stale
    assert ReportDay.objects.filter(org=acme, day=D1, stale=True).exists()
    if not known_day:
        ReportDay.objects.filter(org=acme, day=D1).delete()  # both race to create the day's row too

    results = _race(lambda: summary_rebuild_day(org=acme, day=D1), lambda: summary_rebuild_day(org=acme, day=D1))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert results[0] == results[1]
    stats, routes = results[0]
    assert DailyStats.objects.filter(org=acme, day=D1).count() == stats
    assert RouteStats.objects.filter(org=acme, day=D1).count() == routes
    assert ReportDay.objects.filter(org=acme, day=D1).count() == 1
