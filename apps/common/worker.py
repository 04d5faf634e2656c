"""The embedded default's task worker: django-tasks-db's worker loop on a daemon thread.

Production runs ``manage.py db_worker`` processes instead. Running the loop in the
web process keeps the zero-service start to one process, and lets tasks reach
WebSocket clients through the in-memory channel layer, which only works within
one process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

from django.db import connections

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_current: InprocessWorker | None = None


@dataclass
class InprocessWorker:
    worker: object
    thread: threading.Thread

    def stop(self, timeout: float = 10) -> None:
        global _current
        self.worker.running = False  # type: ignore[attr-defined]  # the loop checks it after each poll
        self.thread.join(timeout)
        with _lock:
            if _current is self:
                _current = None


def _run(worker: object) -> None:
    try:
        worker.run()  # type: ignore[attr-defined]
    finally:
        # A thread's connections are its own; leaving them open would keep the
        # database busy (PostgreSQL refuses to drop a database in use).
        connections.close_all()


def start_inprocess_worker(*, interval: float = 0.5) -> InprocessWorker | None:
    """Start the worker thread once per process; return None if it is already running."""
    global _current
    from .jobs import LeasedWorker

    with _lock:
        if _current is not None:
            return None
        worker = LeasedWorker(
            queue_names=["*"], interval=interval, batch=False, backend_name="default", startup_delay=False,
            max_tasks=None, worker_id=f"inprocess-{socket.gethostname()[:40]}-{os.getpid()}", excluded_queue_names=[],
        )
        thread = threading.Thread(target=_run, args=(worker,), name="lastmile-task-worker", daemon=True)
        _current = InprocessWorker(worker=worker, thread=thread)
        thread.start()
    logger.info("in-process task worker started")
    return _current
