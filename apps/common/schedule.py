"""Periodic jobs without a separate scheduler process.

``settings.PERIODIC_JOBS`` maps a name to a ``django.tasks`` task path and an interval.
Every worker's lease beat calls ``periodic_jobs_enqueue_due``; a due job is claimed by
moving its ``next_run_at`` forward in a conditional update, so however many workers run,
each period's job is enqueued once, and a period missed while no worker ran is run once
when one comes back (not once per missed period).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import PeriodicJob

logger = logging.getLogger(__name__)


def periodic_jobs_enqueue_due(*, now: datetime | None = None) -> list[str]:
    """Enqueue every periodic job that is due; return the names enqueued."""
    now = now or timezone.now()
    enqueued = []
    for name, spec in settings.PERIODIC_JOBS.items():
        every = timedelta(seconds=spec["every_s"])
        job, _ = PeriodicJob.objects.get_or_create(name=name, defaults={"next_run_at": now})
        if job.next_run_at > now:
            continue
        claimed = PeriodicJob.objects.filter(pk=job.pk, next_run_at=job.next_run_at).update(
            next_run_at=now + every, last_enqueued_at=now)
        if claimed:
            import_string(spec["task"]).enqueue()
            enqueued.append(name)
            logger.info("periodic job %s enqueued (every %ss)", name, spec["every_s"])
    return enqueued
