"""Real ``manage.py run_worker`` processes for fault tests: start one on the test
database with a short lease, wait for what it does, kill it with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from tests.realtime.servers import ROOT, database_url

# Short enough that a dead worker's job is run again within seconds, long enough that a
# live worker renews it (every third of a lease) on a busy 2-core CI machine.
LEASE_S = 2


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url(), "WORKER_LEASE_S": str(LEASE_S), "PYTHONUNBUFFERED": "1",
           "DEBUG": "false", "LOG_LEVEL": "WARNING", **extra}
    env.pop("LASTMILE_INPROCESS_WORKER", None)
    return env


@contextlib.contextmanager
def workers(env: dict[str, str], *, queue: str = "*", count: int = 2) -> Iterator[dict[str, subprocess.Popen]]:
    """``count`` leased worker processes by worker id, started together (a Django start-up
    takes seconds on a busy machine); stopped (SIGTERM, then SIGKILL) when the block ends."""
    processes = {
        f"faults-{n}-{os.getpid()}": subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--queue-name", queue, "--interval", "0.1",
             "--no-startup-delay", "--no-reload", "-v", "0", "--worker-id", f"faults-{n}-{os.getpid()}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n in range(count)
    }
    try:
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def kill_the_one_running(job_id, processes: dict[str, subprocess.Popen]) -> str:
    """SIGKILL the worker that claimed the job; return its id."""
    from django_tasks_db.models import DBTaskResult

    worker_id = DBTaskResult.objects.get(pk=job_id).worker_ids[-1]
    processes[worker_id].send_signal(signal.SIGKILL)
    processes[worker_id].wait(10)
    return worker_id


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)  # polling real processes: there is no clock to inject across them
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
