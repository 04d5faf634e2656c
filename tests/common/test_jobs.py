"""Background jobs survive their worker: a killed worker's job runs again, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from apps.common.jobs import lease_renew, orphaned_jobs_requeue
from apps.events.models import Event
from tests.common.tasks_for_tests import record_heartbeat, record_once_after_a_pause
from tests.realtime.servers import ROOT, database_url


def _running(job_id, *, worker: str, minutes_ago: float, attempts: int = 1) -> DBTaskResult:
    row = DBTaskResult.objects.get(pk=job_id)
    row.status = "RUNNING"
    row.started_at = timezone.now() - timedelta(minutes=minutes_ago)
    row.worker_ids = [f"earlier-{n}" for n in range(attempts - 1)] + [worker]
    row.save()
    return row


@pytest.mark.django_db
def test_a_job_whose_worker_stopped_renewing_its_lease_is_requeued(acme, settings):
    settings.WORKER_LEASE_S = 30
    job = record_heartbeat.enqueue(acme.pk)
    _running(job.id, worker="w-dead", minutes_ago=2)
    lease_renew("w-dead", now=timezone.now() - timedelta(minutes=2))

    assert orphaned_jobs_requeue() == 1
    row = DBTaskResult.objects.get(pk=job.id)
    assert (row.status, row.started_at) == ("READY", None)
    assert row.worker_ids == ["w-dead"]  # history kept: who tried it


@pytest.mark.django_db
def test_a_slow_job_of_a_live_worker_is_left_alone(acme):
    job = record_heartbeat.enqueue(acme.pk)
    _running(job.id, worker="w-alive", minutes_ago=10)
    lease_renew("w-alive")

    assert orphaned_jobs_requeue() == 0
    assert DBTaskResult.objects.get(pk=job.id).status == "RUNNING"


@pytest.mark.django_db
def test_a_job_claimed_moments_ago_is_not_mistaken_for_an_orphan(acme):
    job = record_heartbeat.enqueue(acme.pk)
    _running(job.id, worker="w-without-lease-yet", minutes_ago=0.1)

    assert orphaned_jobs_requeue() == 0


@pytest.mark.django_db
def test_two_workers_reaping_at_once_requeue_a_job_once(acme):
    job = record_heartbeat.enqueue(acme.pk)
    _running(job.id, worker="w-dead", minutes_ago=5)

    assert orphaned_jobs_requeue() == 1
    assert orphaned_jobs_requeue() == 0


@pytest.mark.django_db
def test_a_job_that_killed_its_worker_every_time_is_failed_not_retried_forever(acme, settings):
    settings.WORKER_MAX_ATTEMPTS = 3
    job = record_heartbeat.enqueue(acme.pk)
    _running(job.id, worker="w-dead", minutes_ago=5, attempts=3)

    assert orphaned_jobs_requeue() == 0
    row = DBTaskResult.objects.get(pk=job.id)
    assert row.status == "FAILED"
    assert "died 3 times" in row.traceback


def _worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--queue-name", "*", "--interval", "0.1", "--no-startup-delay",
         "--no-reload", "-v", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)  # polling real worker processes; there is no clock to inject across processes
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_job_has_its_job_run_again_by_another_and_the_effect_happens_once(acme, tmp_path):
    pause = tmp_path / "pause"
    pause.touch()
    env = {**os.environ, "DATABASE_URL": database_url(), "WORKER_LEASE_S": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("LASTMILE_INPROCESS_WORKER", None)
    job = record_once_after_a_pause.enqueue(acme.pk, str(pause))

    first = _worker(env)
    try:
        _wait_for(lambda: DBTaskResult.objects.get(pk=job.id).status == "RUNNING", 30, "the first worker to claim")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert DBTaskResult.objects.get(pk=job.id).status == "RUNNING"  # orphaned: nothing else will look at it
    Path(pause).unlink()

    second = _worker(env)
    try:
        _wait_for(lambda: DBTaskResult.objects.get(pk=job.id).status == "SUCCESSFUL", 60, "the job to run again")
    finally:
        second.terminate()
        output, _ = second.communicate(timeout=10)
    row = DBTaskResult.objects.get(pk=job.id)
    assert len(row.worker_ids) == 2 and row.worker_ids[0] != row.worker_ids[1], output
    assert Event.objects.filter(org=acme, type="hub.updated", subject_id=4242).count() == 1
