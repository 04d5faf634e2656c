"""Periodic jobs run once per period however many workers there are."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from apps.common.models import PeriodicJob
from apps.common.schedule import periodic_jobs_enqueue_due

PRUNE = "apps.tracking.tasks.location_history_prune"


@pytest.fixture
def hourly_prune(settings):
    settings.PERIODIC_JOBS = {"location-history-prune": {"task": PRUNE, "every_s": 3600}}


@pytest.mark.django_db
def test_a_due_job_is_enqueued_once_however_many_workers_look(hourly_prune):
    now = timezone.now()
    assert periodic_jobs_enqueue_due(now=now) == ["location-history-prune"]
    assert periodic_jobs_enqueue_due(now=now) == []  # a second worker on the same beat
    assert DBTaskResult.objects.filter(task_path=PRUNE).count() == 1
    assert PeriodicJob.objects.get().next_run_at == now + timedelta(hours=1)


@pytest.mark.django_db
def test_the_next_run_waits_for_the_period_and_missed_periods_run_once(hourly_prune):
    start = timezone.now()
    periodic_jobs_enqueue_due(now=start)
    assert periodic_jobs_enqueue_due(now=start + timedelta(minutes=59)) == []
    # No worker ran for five hours: one catch-up run, not five.
    assert periodic_jobs_enqueue_due(now=start + timedelta(hours=5)) == ["location-history-prune"]
    assert DBTaskResult.objects.filter(task_path=PRUNE).count() == 2
