"""Durable background jobs: leased workers and the requeue of orphaned jobs.

Jobs use Django's ``django.tasks`` API on the django-tasks-db backend. That backend
claims a job by marking it RUNNING; if the worker then dies (SIGKILL, OOM, a lost
machine) nothing ever looks at the job again. Here every worker holds a lease it renews
every ``WORKER_LEASE_S / 3`` seconds, and every worker, between jobs, puts back to READY
the RUNNING jobs whose worker's lease has lapsed. So a killed worker's job runs again on
another worker within about one lease.

A job can therefore run more than once (at least once); every job's effect must be
idempotent, which is each task's own business (a webhook keeps its ``webhook-id``, a
replan checks the route version, a notification has a unique row per trigger).
A job's work usually carries its own claim (a delivery's ``claimed_at``, a plan run's
RUNNING status, a message's ``sending``) whose timeout is far longer than a lease. A job
run again after its worker died calls ``job_is_rerun()`` and may take over a claim older
than ``rerun_claim_cutoff()``: that claim is its dead predecessor's, so the work is done
on this run, not after the claim's own timeout.
A job orphaned ``WORKER_MAX_ATTEMPTS`` times is marked FAILED instead of requeued: a job
that kills its worker every time must not take the fleet of workers down with it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from .models import WorkerLease
from .schedule import periodic_jobs_enqueue_due

logger = logging.getLogger(__name__)

# The attempt number of the job this thread is running (1 outside a leased worker).
_attempt: ContextVar[int] = ContextVar("job_attempt", default=1)


def job_is_rerun() -> bool:
    """True inside a job that an earlier worker claimed and died running (requeued by
    ``orphaned_jobs_requeue``): whatever claim that run left on its work is abandoned."""
    return _attempt.get() > 1


def rerun_claim_cutoff(*, now: datetime | None = None) -> datetime:
    """A rerun may take over a claim made before this. A job is requeued only after its
    worker missed a whole lease, and the worker renewed it every third of a lease, so the
    dead run's claim is at least two thirds of a lease old. Meanwhile no other job could
    claim the same work: the dead run's claim still held it off."""
    return (now or timezone.now()) - timedelta(seconds=settings.WORKER_LEASE_S / 2)


def lease_renew(worker_id: str, *, now: datetime | None = None) -> None:
    WorkerLease.objects.update_or_create(
        worker_id=worker_id,
        defaults={"last_seen": now or timezone.now(), "hostname": socket.gethostname()[:255], "pid": os.getpid()},
    )


def lease_release(worker_id: str) -> None:
    WorkerLease.objects.filter(worker_id=worker_id).delete()


def orphaned_jobs_requeue(*, now: datetime | None = None) -> int:
    """Put back to READY every RUNNING job whose worker's lease has lapsed; return how many.

    A job is orphaned when it has run for longer than a lease and the worker that claimed
    it (the last of ``worker_ids``) holds no fresh lease. The update is conditional on the
    job being unchanged, so two workers reaping at once requeue it once.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WORKER_LEASE_S)
    alive = set(WorkerLease.objects.filter(last_seen__gte=cutoff).values_list("worker_id", flat=True))
    requeued = 0
    for job in DBTaskResult.objects.filter(status="RUNNING", started_at__lt=cutoff).only(
        "id", "worker_ids", "started_at", "task_path"
    ):
        if job.worker_ids and job.worker_ids[-1] in alive:
            continue  # slow, not orphaned
        unchanged = DBTaskResult.objects.filter(pk=job.pk, status="RUNNING", started_at=job.started_at)
        if len(job.worker_ids) >= settings.WORKER_MAX_ATTEMPTS:
            changed = unchanged.update(
                status="FAILED", finished_at=now, exception_class_path="apps.common.jobs.WorkerLost",
                traceback=f"The worker running this job died {len(job.worker_ids)} times; not retried again.",
            )
            if changed:
                logger.error("job %s (%s) killed its worker %d times; marked failed",
                             job.pk, job.task_path, len(job.worker_ids))
            continue
        if unchanged.update(status="READY", started_at=None):
            requeued += 1
            logger.warning("job %s (%s) lost its worker %s; requeued", job.pk, job.task_path,
                           job.worker_ids[-1] if job.worker_ids else "?")
    WorkerLease.objects.filter(last_seen__lt=now - timedelta(seconds=settings.WORKER_LEASE_S * 10)).delete()
    return requeued


class LeasedWorker(Worker):
    """django-tasks-db's worker loop, with a lease renewed on its own thread (so a long
    job keeps it fresh); the same beat requeues orphans and enqueues due periodic jobs."""

    def run(self) -> None:
        lease_renew(self.worker_id)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), name=f"lease-{self.worker_id}", daemon=True)
        beat.start()
        try:
            super().run()
        finally:
            stop.set()
            beat.join(5)
            try:
                lease_release(self.worker_id)
            except Exception:  # the database may be the reason we are stopping
                logger.warning("could not release the lease of worker %s", self.worker_id, exc_info=True)

    def run_task(self, db_task_result: DBTaskResult) -> None:
        # worker_ids has one entry per worker that claimed the job, this one included.
        token = _attempt.set(len(db_task_result.worker_ids))
        try:
            super().run_task(db_task_result)
        finally:
            _attempt.reset(token)

    def _beat(self, stop: threading.Event) -> None:
        interval = settings.WORKER_LEASE_S / 3
        while not stop.wait(interval):
            try:
                close_old_connections()
                lease_renew(self.worker_id)
                orphaned_jobs_requeue()
                periodic_jobs_enqueue_due()
            except Exception:  # a database blip must not kill the lease thread; the next beat retries
                logger.warning("worker %s: lease beat failed", self.worker_id, exc_info=True)
        connections.close_all()
