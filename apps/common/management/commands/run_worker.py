"""``manage.py run_worker``: a background worker that holds a lease (apps/common/jobs.py).

Takes the same options as django-tasks-db's ``db_worker`` (``--queue-name``, ``--interval``,
``--worker-id`` ...); use it instead, so a worker killed mid-job has its job run again.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django_tasks_db.management.commands import db_worker

from apps.common.jobs import LeasedWorker


class Command(db_worker.Command):
    help = "Run a leased background worker (jobs of a dead worker are run again)"

    def handle(self, *, verbosity: int, queue_name: str, interval: float, batch: bool, backend_name: str,
               startup_delay: bool, max_tasks: int | None, worker_id: str, exclude_queues: str, **options) -> None:
        self.configure_logging(verbosity)
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = LeasedWorker(
            queue_names=queue_names, interval=interval, batch=batch, backend_name=backend_name,
            startup_delay=startup_delay, max_tasks=max_tasks, worker_id=worker_id, excluded_queue_names=excluded,
        )
        worker.configure_signals()
        worker.run()
