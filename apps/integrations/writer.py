"""Group commit for inbound webhooks: concurrent requests, one transaction.

Storing each verified webhook in its own transaction cost a commit (and a thread hop
with its own database connection) per request; at a few hundred requests/s on two
cores that, not PostgreSQL, was the limit (docs/performance.md, "Inbound webhooks").
Here a request verified on the event loop hands its row to this process's writer and
awaits the answer. The writer's own thread, with its own database connection, takes
everything that gathered while its previous commit ran and stores it with one
``inbound_store`` (one statement writes the messages and their task rows), then
completes each request's future. No timer: a request arriving on a quiet server is
stored at once, and under load the batch grows by itself.

So the 200 still means "stored and queued": a request the process loses before the
commit (a crash, a kill) was never acknowledged and the partner delivers it again,
which is deduplicated like any redelivery.

Failures: a batch the database refuses is retried request by request, so one bad row
cannot sink the others; a request that still fails raises in its ``submit`` (the view
answers 503 and the partner retries). ``stop()`` (at interpreter exit: a server's clean
shutdown) stores what is pending before returning.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from django.db import close_old_connections, connections

from apps.common.threads import OwnThread

from .services.inbound import NewInbound, Stored, inbound_store

logger = logging.getLogger(__name__)

# Enough for a burst; a larger backlog is stored over several commits.
MAX_BATCH = 500


@dataclass(slots=True)
class Pending:
    item: NewInbound
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Stored]


class InboundWriter(OwnThread):
    thread_name = "lastmile-inbound-writer"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: list[Pending] = []
        self._work = threading.Event()
        self.commits = 0  # for tests and logs

    async def submit(self, item: NewInbound) -> Stored:
        """Return once ``item`` is committed (its message id, or the stored message it repeats)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        with self._lock:
            self._pending.append(Pending(item, loop, future))
        self._work.set()
        self.ensure_started()
        return await future

    def flush_now(self) -> int:
        """Store what is pending (up to MAX_BATCH) in one transaction; return how many."""
        with self._lock:
            taken, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if not self._pending:
                self._work.clear()
        if not taken:
            return 0
        try:
            stored = inbound_store(items=[p.item for p in taken])
        except Exception as exc:
            connections["default"].close_if_unusable_or_obsolete()
            if len(taken) == 1:
                logger.warning("an inbound webhook could not be stored; the partner will retry", exc_info=True)
                _complete(taken[0], error=exc)
                return 1
            # Find the request the database refuses; the others are stored.
            for pending in taken:
                try:
                    _complete(pending, result=inbound_store(items=[pending.item])[0])
                except Exception as each:
                    connections["default"].close_if_unusable_or_obsolete()
                    logger.warning("an inbound webhook could not be stored; the partner will retry", exc_info=True)
                    _complete(pending, error=each)
            return len(taken)
        self.commits += 1
        _complete_all(taken, stored)
        return len(taken)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after storing what is pending (a clean shutdown acknowledges it)."""
        self.stop_thread(timeout)
        if self.pending:
            try:
                while self.flush_now():
                    pass
            finally:
                connections.close_all()

    def _wake(self) -> None:
        self._work.set()

    def _run(self, stopping: threading.Event) -> None:
        checked = 0.0
        try:
            while True:
                self._work.wait(1.0)
                if not self.pending:
                    if stopping.is_set():
                        return
                    continue
                try:
                    if time.monotonic() - checked > 1.0:
                        # Django does this per request (and this thread sees none); once a
                        # second is enough, as a failed batch drops a broken connection itself.
                        close_old_connections()
                        checked = time.monotonic()
                    self.flush_now()
                except Exception:  # keep the thread alive whatever happens
                    logger.exception("inbound writer flush failed")
        finally:
            connections.close_all()


def _complete_all(taken: list[Pending], stored: list[Stored]) -> None:
    """One wake-up per event loop for a whole batch, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Stored], Stored]]] = {}
    for pending, result in zip(taken, stored, strict=True):
        by_loop.setdefault(pending.loop, []).append((pending.future, result))

    def settle(pairs: list[tuple[asyncio.Future[Stored], Stored]]) -> None:
        for future, result in pairs:
            if not future.done():  # else the request went away; what was stored stays stored
                future.set_result(result)

    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
            loop.call_soon_threadsafe(settle, pairs)


def _complete(pending: Pending, *, result: Stored | None = None, error: BaseException | None = None) -> None:
    future = pending.future

    def settle() -> None:
        if future.done():
            return  # the request went away meanwhile; what was stored stays stored
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # the loop is closed: the server is shutting down
        pending.loop.call_soon_threadsafe(settle)


inbound_writer = InboundWriter()
atexit.register(inbound_writer.stop)
