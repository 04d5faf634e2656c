"""Group commit for live pings: many drivers' batches, one transaction.

Storing each ping on its own costs a transaction and four statements on the one
thread Django's synchronous code shares in an ASGI process; one process saturated at
about 150 pings/s that way (docs/performance.md, "Live fan-out"). Here the driver
socket validates its batch on the event loop (pure, ``location_parse``), hands the
valid pings to this process's writer, and awaits the acknowledgement. The writer's
own thread, with its own database connection, stores everything pending in one
``location_store`` (the same rules, locks and dedupe as the HTTP backlog) at most
every LOCATION_WRITE_TICK_S, and completes each batch's acknowledgement once the
transaction has committed.

So a ``pings.ack`` still means "stored": a ping the server loses before committing (a
crash, a kill) was never acknowledged, and the phone sends it again after it
reconnects; duplicates are dropped by the same rule as always. The cost is latency,
at most one tick plus the commit, and the gain is that a commit of 400 pings costs
about what a commit of one did.

Bounds and failures:

- At most LOCATION_WRITE_MAX_PENDING pings wait in memory (a batch larger than that
  is taken alone); a socket with more waits for room, so its phone's acknowledgement
  is late, never lost. Each socket has at most one batch in flight anyway: a consumer
  handles one message at a time.
- A failing store is retried (RETRIES times, backing off) on a fresh connection. If it
  still fails, each batch is tried on its own, so one batch the database refuses
  cannot sink the others; a batch that fails for good raises in its socket's
  ``submit``, which closes with 1011: the phone reconnects and sends it again.
- ``stop()`` (at interpreter exit: a server's clean shutdown) stores what is pending
  before returning.

Tests turn ``autostart`` off and call ``flush_now()``, or let the thread run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connections

from apps.common.threads import OwnThread

from . import fanout
from .services import PingBatch, location_parse, location_store

logger = logging.getLogger(__name__)

RETRIES = 3
BACKOFF_S = (0.05, 0.25, 1.0)


@dataclass(slots=True)
class Pending:
    batch: PingBatch
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[dict[str, Any]] | None


class PingWriter(OwnThread):
    thread_name = "lastmile-ping-writer"

    def __init__(self, store: Callable[..., None] = location_store) -> None:
        super().__init__()
        self._store = store
        self._lock = threading.Lock()  # guards _pending and _count
        self._pending: list[Pending] = []
        self._count = 0  # valid pings in _pending
        self._work = threading.Event()
        self.autostart = True
        self.flushes = 0  # commits done, for tests and logs

    # --- the socket's side ----------------------------------------------------------

    async def submit(self, *, org_id: int, driver_id: int, pings: list[Any]) -> dict[str, Any]:
        """Validate a driver's batch now and return its acknowledgement once its valid
        pings are committed. Raises if they could not be stored."""
        # The fan-out thread also runs the stale check, which must run even when every
        # ping is refused: a driver reporting garbage is not reporting.
        fanout.wake()
        batch = location_parse(org_id=org_id, driver_id=driver_id, pings=pings)
        if not batch.valid:
            location_store(batches=[batch])  # no database work: sorts the rejections
            return batch.result
        while not self._has_room(len(batch.valid)):
            await asyncio.sleep(settings.LOCATION_WRITE_TICK_S)  # backpressure: wait for a commit
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        fanout.coalescer.remember_loop(loop)
        self._enqueue(Pending(batch, loop, future))
        return await future

    def _has_room(self, size: int) -> bool:
        with self._lock:
            return self._count == 0 or self._count + size <= settings.LOCATION_WRITE_MAX_PENDING

    def _enqueue(self, item: Pending) -> None:
        with self._lock:
            self._pending.append(item)
            self._count += len(item.batch.valid)
        self._work.set()
        if self.autostart:
            self.ensure_started()

    @property
    def pending(self) -> int:
        """Valid pings waiting to be stored."""
        with self._lock:
            return self._count

    # --- storing --------------------------------------------------------------------

    def flush_now(self) -> int:
        """Store everything pending in one transaction and complete the acknowledgements;
        return how many batches were taken. Synchronous: the writer thread, a test."""
        with self._lock:
            taken, self._pending, self._count = self._pending, [], 0
            self._work.clear()
        if not taken:
            return 0
        failure = self._store_with_retries([p.batch for p in taken])
        if failure is None:
            self.flushes += 1
            for item in taken:
                _complete(item, result=item.batch.result)
            return len(taken)
        if len(taken) > 1 and not _transient(failure):
            # Something in the data, not the database being away: find the batch.
            for item in taken:
                _reset(item.batch)
                error = self._store_with_retries([item.batch], retries=1)
                _complete(item, result=item.batch.result, error=error)
            return len(taken)
        logger.error("%d ping batches not stored; their sockets close and the phones resend", len(taken),
                     exc_info=failure)
        for item in taken:
            _complete(item, error=failure)
        return len(taken)

    def _store_with_retries(self, batches: list[PingBatch], retries: int = RETRIES) -> BaseException | None:
        failure: BaseException | None = None
        for attempt in range(retries):
            try:
                self._store(batches=batches)
                return None
            except Exception as exc:
                failure = exc
                for batch in batches:
                    _reset(batch)
                if not _transient(exc):
                    return exc
                logger.warning("storing %d ping batches failed (attempt %d of %d); retrying", len(batches),
                               attempt + 1, retries, exc_info=True)
                # A dropped connection is unusable: the next attempt opens a new one.
                connections["default"].close_if_unusable_or_obsolete()
                if attempt + 1 < retries:
                    time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
        return failure

    # --- the thread -------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after storing what is pending (a clean shutdown loses nothing)."""
        self.stop_thread(timeout)
        if self.pending:
            try:
                self.flush_now()  # the thread was not running, or did not finish in time
            finally:
                connections.close_all()

    def _wake(self) -> None:
        self._work.set()

    def _run(self, stopping: threading.Event) -> None:
        tick = settings.LOCATION_WRITE_TICK_S
        last = float("-inf")
        try:
            while True:
                self._work.wait(1.0)
                self._work.clear()  # before looking: a batch queued after this sets it again
                if stopping.is_set() and not self.pending:
                    return
                if not self.pending:
                    continue
                # Group commit: a ping arriving after a quiet spell is stored at once; under
                # load, one commit per tick takes everything that gathered meanwhile.
                wait = last + tick - time.monotonic()
                if wait > 0 and not stopping.is_set():
                    stopping.wait(wait)
                last = time.monotonic()
                try:
                    close_old_connections()
                    self.flush_now()
                except Exception:  # keep the thread alive whatever happens
                    logger.exception("ping writer flush failed")
        finally:
            connections.close_all()


def _transient(exc: BaseException) -> bool:
    """A database that is away or restarting, not a statement it refuses."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower())


def _reset(batch: PingBatch) -> None:
    """Undo what a rolled-back store wrote into the acknowledgement."""
    batch.result["accepted"] = batch.result["duplicates"] = batch.result["flagged"] = 0
    batch.result["rejected"] = [r for r in batch.result["rejected"] if r["code"] != "driver_not_allowed"]


def _complete(item: Pending, *, result: dict[str, Any] | None = None, error: BaseException | None = None) -> None:
    future, loop = item.future, item.loop
    if future is None or loop is None:
        return

    def settle() -> None:
        if future.done():
            return  # the socket went away meanwhile
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or {})

    with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
        loop.call_soon_threadsafe(settle)


ping_writer = PingWriter()
atexit.register(ping_writer.stop)
