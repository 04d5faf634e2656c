"""The embedded default runs background tasks on a thread inside the web process."""

from __future__ import annotations

import time

import pytest
from django_tasks_db.models import DBTaskResult

from apps.common.worker import start_inprocess_worker
from apps.events.models import Event
from tests.common.tasks_for_tests import record_heartbeat


@pytest.fixture
def worker():
    handle = start_inprocess_worker(interval=0.05)
    assert handle is not None
    yield handle
    handle.stop()
    assert not handle.thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_the_inprocess_worker_runs_an_enqueued_task(acme, worker):
    result = record_heartbeat.enqueue(acme.pk)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = DBTaskResult.objects.get(pk=result.id)
        if row.status in ("SUCCESSFUL", "FAILED"):
            break
        time.sleep(0.05)  # polling a real worker thread; there is no clock to inject here
    assert row.status == "SUCCESSFUL", row.status
    assert Event.objects.filter(org=acme, type="hub.updated").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_process_runs_one_worker_thread(worker):
    assert start_inprocess_worker(interval=0.05) is None
