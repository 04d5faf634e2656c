"""The summary tables stay right as events arrive: late syncs, cancellations near
midnight, rebuilds run twice, and the rebuild command."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import time_machine
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from apps.accounts.actor import system_actor
from apps.dispatch.services.orders import order_cancel
from apps.reports.models import DailyStats, Grain, ReportDay, RouteStats
from apps.reports.selectors import ReportFilters, report_kpis
from apps.reports.summary import _claim_stale, summary_rebuild_day, summary_refresh_stale
from tests.factories import OrderFactory
from tests.reports.conftest import D1, D2, build_history, sync_offline


def monday(acme):
    return report_kpis(ReportFilters(actor=system_actor(acme), date_from=D1, date_to=D1))["kpis"]


def test_a_stop_synced_a_day_late_marks_the_day_it_happened_stale(acme, acme_hub, acme_van, bob,
                                                                  django_capture_on_commit_callbacks):
    world = build_history(acme, acme_hub, acme_van, bob, sync_offline_stop=False)
    for day in (D1, D2):
        summary_rebuild_day(org=acme, day=day)
    assert (monday(acme)["attempts"], monday(acme)["on_time"]) == (4, 1)

    with django_capture_on_commit_callbacks(execute=True):
        sync_offline(world["actor"], world["stops"]["o5"])

    assert ReportDay.objects.get(org=acme, day=D1).stale
    assert not ReportDay.objects.get(org=acme, day=D2).stale
    [job] = DBTaskResult.objects.filter(task_path="apps.reports.tasks.reports_refresh")
    assert job.run_after > job.enqueued_at  # delayed: the next events of a busy day coalesce into it
    assert summary_refresh_stale() == 1
    assert (monday(acme)["attempts"], monday(acme)["on_time"]) == (5, 2)  # on time on the device's clock


def test_events_that_change_no_figure_mark_nothing(acme, django_capture_on_commit_callbacks):
    from apps.dispatch.inputs import OrderIn
    from apps.dispatch.services.orders import order_create
    from tests.factories import order_payload

    with django_capture_on_commit_callbacks(execute=True):
        order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload()))

    assert not ReportDay.objects.exists()


def test_a_cancellation_counts_on_the_local_day_it_happened(acme, acme_hub, django_capture_on_commit_callbacks):
    order = OrderFactory(org=acme, hub=acme_hub)
    # 23:30 UTC on Monday is 00:30 on Tuesday in Berlin, Acme's time zone.
    with (time_machine.travel(datetime(2026, 11, 23, 23, 30, tzinfo=UTC), tick=False),
          django_capture_on_commit_callbacks(execute=True)):
        order_cancel(actor=system_actor(acme), order=order)

    assert list(ReportDay.objects.values_list("day", "stale")) == [(D2, True)]
    summary_refresh_stale()
    assert set(DailyStats.objects.filter(org=acme).values_list("day", "cancelled")) == {(D2, 1)}


def test_rebuilding_a_day_twice_gives_the_same_rows(acme, history):
    def rows():
        full = DailyStats.objects.filter(day=D1, grain=Grain.FULL)
        return (sorted(full.values_list("hub", "driver", "source", "attempts", "on_time"), key=str),
                sorted(RouteStats.objects.filter(day=D1).values_list("route", "attempts", "planned_m", "actual_m"),
                       key=str))

    before = rows()
    summary_rebuild_day(org=acme, day=D1)
    summary_rebuild_day(org=acme, day=D1)

    assert rows() == before
    # Bob shop and erp, Dan shop and erp, o4's cancellation (no driver); routes R1 and R2.
    assert len(before[0]) == 5 and len(before[1]) == 2


def test_a_stale_day_is_claimed_by_one_worker(acme):
    ReportDay.objects.create(org=acme, day=D1, stale=True)

    first, second = _claim_stale(), _claim_stale()

    assert first is not None and first.day == D1
    assert second is None


def test_the_rebuild_command_rebuilds_a_range_of_days(acme, acme_hub, acme_van, bob):
    build_history(acme, acme_hub, acme_van, bob)
    out = StringIO()

    call_command("reports_rebuild", "--from", "2026-11-22", "--to", "2026-11-24", "--org", "acme", stdout=out)

    assert "acme: 3 days" in out.getvalue()
    assert sorted(ReportDay.objects.filter(org=acme).values_list("day", "stale")) == [
        (D1.replace(day=22), False), (D1, False), (D2, False)]
    assert report_kpis(ReportFilters(actor=system_actor(acme), date_from=D1, date_to=D2))["kpis"]["attempts"] == 6


def test_each_grain_of_a_day_adds_up_to_the_same_totals(acme, history):
    from django.db.models import Sum

    totals = {grain: DailyStats.objects.filter(org=acme, grain=grain).aggregate(a=Sum("attempts"), c=Sum("cancelled"),
                                                                                   o=Sum("on_time"))
              for grain in Grain.values}

    assert {tuple(t.values()) for t in totals.values()} == {(6, 2, 3)}
    assert not DailyStats.objects.filter(grain=Grain.SOURCE, driver__isnull=False).exists()
    assert not DailyStats.objects.filter(grain=Grain.DRIVER).exclude(source="").exists()


def test_the_hourly_settle_re_marks_only_the_last_two_days(acme):
    from apps.reports.summary import summary_settle

    for day in (D1.replace(day=20), D1, D2):
        ReportDay.objects.create(org=acme, day=day, stale=False)

    marked = summary_settle(now=datetime(2026, 11, 24, 12, tzinfo=UTC))

    assert marked == 2
    assert sorted(ReportDay.objects.filter(stale=True).values_list("day", flat=True)) == [D1, D2]


def test_a_busy_day_queues_one_rebuild_until_it_runs(acme, acme_hub, acme_van, bob,
                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        build_history(acme, acme_hub, acme_van, bob)

    # Dozens of committed events over two days: one job per day that turned stale.
    assert DBTaskResult.objects.filter(task_path="apps.reports.tasks.reports_refresh").count() == 2
    assert summary_refresh_stale() == 2
    assert monday(acme)["attempts"] == 5
