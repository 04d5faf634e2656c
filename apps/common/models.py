from django.db import models


class WorkerLease(models.Model):
    """A background worker's proof of life, renewed every few seconds.

    django-tasks-db marks a claimed job RUNNING and never looks at it again; a worker
    killed mid-job would leave it RUNNING forever. Leases let a surviving worker tell a
    slow job from an orphaned one and run the orphan again (apps/common/jobs.py).
    """

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True)
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.worker_id} ({self.hostname}:{self.pid})"


class PeriodicJob(models.Model):
    """When a periodic job (settings.PERIODIC_JOBS) is next due. Workers claim a due run
    with a conditional update, so with any number of workers each run is enqueued once."""

    name = models.CharField(max_length=100, unique=True)
    next_run_at = models.DateTimeField()
    last_enqueued_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (next {self.next_run_at:%Y-%m-%d %H:%M})"
