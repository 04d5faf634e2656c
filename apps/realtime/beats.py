"""Heartbeats for every live socket of a process, from one task per event loop.

A socket's beat does three things (docs/realtime.md, "Sequence numbers and resync"):
sends ``heartbeat`` so the client can tell a dead connection, re-joins its groups (a
Redis restart forgets them), and repairs what a dropped push left out, by reading the
event log when the organization's log has moved past the socket's cursor.

One task per socket did that at 2,000 sockets as 2,000 tasks, timers and sleeping
futures (a few KB each), and one log read per socket whenever anything happened in
the organization: a driver's stream skips other drivers' events, so every driver
socket lags after every event, and each read its own slice of the same log. Here one
ticker per loop does it for all:

- the beat is cut into SLOTS; a socket beats in its own slot (the one current when it
  connected, so its first beat comes about a beat after its welcome), and the work of
  a beat is spread over it as the sockets' connection times are;
- at the start of each beat, each organization's log head is read once and, if any
  socket lags behind it, the organization's new events are read once (``LogSlice``) and
  each lagging socket picks its own from memory. A socket too far behind for a replay
  gets its own catch-up (a snapshot), as before.

So a dropped push is repaired within a beat, and N sockets of one organization cost one
head read and at most one log read per beat, whatever N.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings

from . import protocol

if TYPE_CHECKING:
    from .consumers import LiveConsumer

logger = logging.getLogger(__name__)

SLOTS = 10


class Ticker:
    """The sockets of one event loop, and the task that beats for them."""

    def __init__(self) -> None:
        self.slots: list[set[LiveConsumer]] = [set() for _ in range(SLOTS)]
        self.orgs: dict[int, set[LiveConsumer]] = {}
        self.task: asyncio.Task[None] | None = None
        self.slot = 0  # the slot beating now, or last
        self._slot_of: dict[LiveConsumer, int] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    def add(self, socket: LiveConsumer, org_id: int) -> None:
        # The slot that just beat: a new socket's first beat comes about one beat after
        # its welcome, as the client expects. Sockets that connect over a few seconds
        # (a fleet starting its shift) spread over the slots.
        slot = self.slot
        self._slot_of[socket] = slot
        self.slots[slot].add(socket)
        self.orgs.setdefault(org_id, set()).add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run(), name="lastmile-heartbeats")

    def discard(self, socket: LiveConsumer, org_id: int) -> None:
        slot = self._slot_of.pop(socket, None)
        if slot is None:
            return
        self.slots[slot].discard(socket)
        members = self.orgs.get(org_id)
        if members is not None:
            members.discard(socket)
            if not members:
                del self.orgs[org_id]
        if not self._slot_of and self.task is not None:
            # Nobody left to beat for: stop now, not after a last sleep (a test's loop
            # may close first, and a server process has nothing to wait for).
            self.task.cancel()
            self.task = None

    async def run(self) -> None:
        try:
            while self._slot_of:
                await asyncio.sleep(settings.REALTIME_HEARTBEAT_S / SLOTS)
                self.slot = slot = (self.slot + 1) % SLOTS
                if slot == 0:
                    await self.repair()
                await self.beat(list(self.slots[slot]))
        except asyncio.CancelledError:
            pass
        except Exception:  # never let one beat stop every socket's heartbeat
            logger.exception("heartbeat ticker failed; restarting it")
            self.task = asyncio.get_running_loop().create_task(self.run(), name="lastmile-heartbeats")

    async def beat(self, sockets: Iterable[LiveConsumer]) -> None:
        for socket in sockets:
            if socket not in self._slot_of:
                continue  # left while an earlier one was beating
            try:
                await socket.beat()
            except Exception:  # e.g. Redis is restarting: the client reconnects and resyncs
                await _close(socket, "heartbeat failed")

    async def repair(self) -> None:
        """One head read per organization; one log read for all its lagging sockets."""
        from .consumers import log_heads, read_off_request_thread

        for org_id, members in list(self.orgs.items()):
            try:
                head = await log_heads.get(org_id)
            except Exception:
                for socket in list(members):
                    await _close(socket, "log head unreadable")
                continue
            lagging = [s for s in members if s.cursor < head]
            near = [s for s in lagging if head - s.cursor <= protocol.REPLAY_LIMIT]
            for socket in lagging:
                if socket not in near:  # too far behind to replay: its own snapshot
                    try:
                        await socket.catch_up(from_seq=socket.cursor, reason="heartbeat")
                    except Exception:
                        await _close(socket, "catch-up failed")
            if not near:
                continue
            try:
                log = await read_off_request_thread(protocol.org_log_slice)(org_id, min(s.cursor for s in near), head)
            except Exception:
                for socket in near:
                    await _close(socket, "event log unreadable")
                continue
            for socket in near:
                try:
                    await socket.catch_up_from(log)
                except Exception:
                    await _close(socket, "catch-up failed")


async def _close(socket: LiveConsumer, why: str) -> None:
    logger.warning("%s; closing a %s socket so the client reconnects", why, socket.audience, exc_info=True)
    try:
        await socket.close(code=1011)
    except Exception:
        logger.debug("closing failed", exc_info=True)


class Beats:
    """A ticker per event loop (a server has one; tests may run several, one at a time)."""

    def __init__(self) -> None:
        self._tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()

    def ticker(self) -> Ticker:
        loop = asyncio.get_running_loop()
        ticker = self._tickers.get(loop)
        if ticker is None:
            ticker = self._tickers[loop] = Ticker()
        return ticker

    def add(self, socket: LiveConsumer, org_id: int) -> None:
        self.ticker().add(socket, org_id)

    def discard(self, socket: LiveConsumer, org_id: int) -> None:
        self.ticker().discard(socket, org_id)


beats = Beats()
