"""The embedded default's task worker: django-tasks-db's worker loop on a daemon thread.

Production runs ``manage.py db_worker`` processes instead. Running the loop in the
web process keeps the zero-service start to one process, and lets tasks reach
WebSocket clients through the in-memory channel layer, which only works within
one process.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)
_started = threading.Event()


def start_inprocess_worker(*, interval: float = 0.5) -> threading.Thread | None:
    if _started.is_set():
        return None
    _started.set()
    from django_tasks_db.management.commands.db_worker import Worker

    worker = Worker(
        queue_names=["*"],
        interval=interval,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="inprocess",
        excluded_queue_names=[],
    )
    thread = threading.Thread(target=worker.run, name="lastmile-task-worker", daemon=True)
    thread.start()
    logger.info("in-process task worker started")
    return thread
