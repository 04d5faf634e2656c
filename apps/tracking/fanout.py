"""Coalesced fan-out of driver positions to consoles, and the periodic stale check.

A driver may ping every second and a console may watch 1,000 drivers: one channel
message per ping would be 1,000 messages per console per second. Instead this buffer
keeps the latest position per driver, and a daemon thread sends, every
LOCATION_FANOUT_TICK_S, one ``positions`` message per organization with every driver
that moved (docs/realtime.md). The consumers' ``lastmile_live`` handler forwards it.

The tick is short (0.1 s) so a position reaches consoles within about a tenth of a
second; the rate per driver is capped separately (LOCATION_FANOUT_MIN_INTERVAL_S, one
update a second): a driver pinging faster has its newest position held back until its
interval has passed, never a stale one sent.

Positions are ephemeral: a send that fails is dropped (the next tick carries newer
ones, and a reconnecting console reads ``latest_positions``), and nothing here ever
raises into ``location_receive``. Each process has its own buffer and thread, started
on first use; every LOCATION_STALE_CHECK_S that thread starts ``location_check_stale``
on a thread of its own (positions do not wait for it), which is safe to run from
several processes at once.

Tests call ``flush_now()`` instead of waiting for a tick, and ``stop()`` the thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from datetime import datetime
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connections

from apps.common import metrics
from apps.common.threads import OwnThread
from apps.realtime.groups import org_group

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0


class Coalescer(OwnThread):
    thread_name = "lastmile-positions"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()  # guards _pending
        self._pending: dict[int, dict[int, tuple[datetime, dict[str, Any]]]] = {}
        self._last_sent: dict[int, float] = {}  # driver id -> monotonic time of its last send
        self._queued_at: dict[int, float] = {}  # driver id -> when its pending position arrived
        self._kick = threading.Event()  # set when new positions should go out now, not next tick
        self._stale_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Tests turn this off and flush by hand.
        self.autostart = True

    # --- producers ----------------------------------------------------------------

    def push(self, *, org_id: int, driver_id: int, at: datetime, position: dict[str, Any]) -> None:
        """Queue a driver's new position; an older one than already queued is ignored."""
        try:
            self._remember_loop()
            with self._lock:
                drivers = self._pending.setdefault(org_id, {})
                queued = drivers.get(driver_id)
                if queued is None or queued[0] < at:
                    drivers[driver_id] = (at, position)
                    self._queued_at.setdefault(driver_id, time.monotonic())
            self.wake()
        except Exception:  # a position is best-effort; the caller's write already succeeded
            logger.warning("position of driver %s not queued for fan-out", driver_id, exc_info=True)

    def kick(self) -> None:
        """Send what is pending now rather than at the next tick: the ping writer calls
        this after each group commit, so a position waits for one commit, not for a
        commit and then a tick."""
        self._kick.set()
        self.wake()

    def remember_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server's event loop, for producers that are not asgiref threads (the ping
        writer's thread): see ``_remember_loop``."""
        self._loop = loop

    def wake(self) -> None:
        """Start the thread on first use (unless a test switched ``autostart`` off). Called
        for every batch of pings, not only for moved positions: the stale check must run
        even when every driver's pings are being filtered out."""
        try:
            if self.autostart:
                self.ensure_started()
        except Exception:
            logger.warning("position fan-out thread did not start", exc_info=True)

    def _remember_loop(self) -> None:
        """Remember the server's event loop when called from one of its worker threads.

        The in-memory channel layer is not thread-safe: a group_send from another loop
        fills a consumer's queue without waking the loop that waits on it, so positions
        would arrive only at the next heartbeat. Sending on the server's own loop avoids
        that (and costs nothing with Redis)."""
        local = SyncToAsync.threadlocal
        loop = getattr(local, "main_event_loop", None)
        if loop is not None and getattr(local, "main_event_loop_pid", None) == os.getpid():
            self._loop = loop

    # --- sending --------------------------------------------------------------------

    def discard_pending(self) -> None:
        with self._lock:
            self._pending = {}

    def flush_now(self, *, min_interval: float = 0.0) -> int:
        """Send what is pending, one message per organization; return how many were sent.
        A driver sent less than ``min_interval`` seconds ago stays pending for a later
        tick. Call from synchronous code (the fan-out thread, a test)."""
        now = time.monotonic()
        waited: list[float] = []
        with self._lock:
            batches: dict[int, dict[int, tuple[datetime, dict[str, Any]]]] = {}
            for org_id, drivers in self._pending.items():
                for driver_id, queued in list(drivers.items()):
                    if now - self._last_sent.get(driver_id, float("-inf")) >= min_interval:
                        batches.setdefault(org_id, {})[driver_id] = queued
                        self._last_sent[driver_id] = now
                        del drivers[driver_id]
                        waited.append(now - self._queued_at.pop(driver_id, now))
            self._pending = {org_id: drivers for org_id, drivers in self._pending.items() if drivers}
        sent = 0
        for org_id, drivers in batches.items():
            positions = [position for _, (_, position) in sorted(drivers.items())]
            message = {"type": "lastmile.live", "payload": {"type": "positions", "positions": positions}}
            sent += self._send(org_group(org_id), message)
        for seconds in waited:
            metrics.fanout_seconds.observe(seconds)
        return sent

    def _usable_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return None
        try:
            if asyncio.get_running_loop() is loop:
                return None  # waiting on our own loop would deadlock
        except RuntimeError:
            pass
        return loop

    def _send(self, group: str, message: dict[str, Any]) -> bool:
        try:
            layer = get_channel_layer()
            if layer is None:
                return False
            loop = self._usable_loop()
            if loop is not None:
                asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(SEND_TIMEOUT_S)
            else:
                async_to_sync(layer.group_send)(group, message)
            return True
        except Exception:
            logger.warning("positions for %s dropped; consoles get newer ones next tick", group, exc_info=True)
            return False

    def _send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> int:
        """Several group sends in one hop to the event loop (the ETA engine sends one per
        tracking page whose ETA moved: one hop each would cost more than the ETAs)."""
        if not messages:
            return 0
        try:
            layer = get_channel_layer()
            if layer is None:
                return 0

            async def send_all() -> None:
                await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))

            loop = self._usable_loop()
            if loop is not None:
                asyncio.run_coroutine_threadsafe(send_all(), loop).result(SEND_TIMEOUT_S)
            else:
                async_to_sync(send_all)()
            return len(messages)
        except Exception:
            logger.warning("%d live messages dropped; clients get newer ones next time", len(messages), exc_info=True)
            return 0

    # --- the thread -------------------------------------------------------------------

    def _starting(self) -> None:
        self._kick.clear()

    def _wake(self) -> None:
        self._kick.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (tests; shutdown). Pending positions are dropped."""
        self.stop_thread(timeout)
        stale = self._stale_thread
        if stale is not None and stale is not threading.current_thread():
            stale.join(timeout)

    def _run(self, stopping: threading.Event) -> None:
        tick = settings.LOCATION_FANOUT_TICK_S
        min_interval = settings.LOCATION_FANOUT_MIN_INTERVAL_S
        stale_every = settings.LOCATION_STALE_CHECK_S
        next_stale_check = time.monotonic() + stale_every
        while not stopping.is_set():
            self._kick.wait(tick)
            self._kick.clear()
            if stopping.is_set():
                break
            try:
                self.flush_now(min_interval=min_interval)
                self.refresh_etas()
                if time.monotonic() >= next_stale_check:
                    next_stale_check = time.monotonic() + stale_every
                    self._start_stale_check()
            except Exception:  # keep the thread alive whatever happens
                logger.exception("position fan-out tick failed")

    def refresh_etas(self) -> None:
        """The ETA engine's per-ping refresh rides on this thread's tick (apps/eta/live.py)."""
        from apps.eta import live

        if not live.tracker.has_pending():
            return
        try:
            # Reuse this thread's connection from tick to tick (CONN_MAX_AGE), dropping it
            # only when it is too old or broken: a new connection per tick would cost more
            # than the refresh.
            close_old_connections()
            live.flush(min_interval=settings.ETA_MIN_INTERVAL_S)
        except Exception:
            logger.warning("ETA refresh failed; the next tick tries again", exc_info=True)
            connections.close_all()

    def _start_stale_check(self) -> None:
        """Run the stale check beside the fan-out, not in it: the check scans every on-duty
        driver (tens of milliseconds at 2,000, more on a busy machine), and positions
        must not wait for it. One check at a time."""
        running = self._stale_thread
        if running is not None and running.is_alive():
            return
        self._stale_thread = threading.Thread(target=self.check_stale, name="lastmile-stale-check", daemon=True)
        self._stale_thread.start()

    def check_stale(self) -> None:
        from .services import location_check_stale

        try:
            close_old_connections()
            location_check_stale()
        except Exception:
            logger.warning("location stale check failed; next one in %ss", settings.LOCATION_STALE_CHECK_S, exc_info=True)
        finally:
            # This thread's own connection: never hold one open between checks.
            connections.close_all()


coalescer = Coalescer()


def push(*, org_id: int, driver_id: int, at: datetime, position: dict[str, Any]) -> None:
    coalescer.push(org_id=org_id, driver_id=driver_id, at=at, position=position)


def flush_now(*, min_interval: float = 0.0) -> int:
    return coalescer.flush_now(min_interval=min_interval)


def send_live(messages: list[tuple[str, dict[str, Any]]]) -> int:
    """Send ephemeral messages (not events: ETAs, positions), each ``(group, payload)``,
    in one hop to the server's loop when there is one. Never raises; returns how many
    were sent."""
    return coalescer._send_many([(group, {"type": "lastmile.live", "payload": payload}) for group, payload in messages])


def ensure_started() -> None:
    coalescer.ensure_started()


def wake() -> None:
    coalescer.wake()


def kick() -> None:
    coalescer.kick()


def stop() -> None:
    coalescer.stop()
