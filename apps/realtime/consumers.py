"""WebSocket endpoints. Thin: authenticate on connect, join the audience's groups,
forward events, and resync from the event log. No business rules live here.

Delivery model: live pushes may be lost (at-most-once channel layer), the event log
may not. Each consumer keeps ``cursor``, the last sequence it has delivered or
checked. A client says where it is (``hello``); the server replays what it missed,
or sends a snapshot when it is too far behind. Gaps are also detected server-side:
when a pushed batch does not start right after the cursor, and on every heartbeat
when the organization's log has moved past the cursor (one shared read per
organization per beat: apps/realtime/beats.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.common import metrics

from . import protocol
from .beats import beats
from .groups import user_group
from .snapshot_pages import snapshot_frames

logger = logging.getLogger(__name__)


def read_off_request_thread(func: Any) -> Any:
    """Run a read-only query on the thread pool instead of the one thread Django's sync
    views share: a slow request must not delay heartbeats and replays for every socket."""
    return database_sync_to_async(func, thread_sensitive=False)


class LogHeads:
    """Each organization's event-log head, read at most once per REALTIME_HEARTBEAT_S / 10
    per process and shared by every socket of the organization.

    Every socket checks the head on its heartbeat (to notice a dropped push); with 2,000
    sockets that was 200 queries a second for the same number. A head up to a tenth of a
    beat old only delays that repair by as much: pushes that did arrive are delivered
    at once, whatever the cache says."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._cache: dict[int, tuple[float, int]] = {}
        self._inflight: dict[tuple[int, int], asyncio.Future[int]] = {}  # (id(loop), org id) -> the read

    def ttl(self) -> float:
        return settings.REALTIME_HEARTBEAT_S / 10

    async def get(self, org_id: int) -> int:
        cached = self._cache.get(org_id)
        if cached is not None and self.clock() - cached[0] < self.ttl():
            return cached[1]
        key = (id(asyncio.get_running_loop()), org_id)
        read = self._inflight.get(key)
        if read is None:
            read = asyncio.ensure_future(self._read(org_id))
            self._inflight[key] = read
            read.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(read)

    async def _read(self, org_id: int) -> int:
        started = self.clock()
        head = await read_off_request_thread(protocol.org_log_head)(org_id)
        self._cache[org_id] = (started, head)
        return head

    def clear(self) -> None:
        self._cache.clear()


log_heads = LogHeads()


def _forget_related_rows(user: Any) -> None:
    """Authorizing read the user's membership, organization and driver profile, and the
    user object caches them; the scope holds the user for as long as the socket is open
    (so do the middlewares' copies of it). The socket needs only its ``Audience``: drop
    the cached rows, a few KB per socket (docs/performance.md, "Live fan-out")."""
    user = getattr(user, "_wrapped", user)
    state = getattr(user, "_state", None)
    if state is not None and isinstance(getattr(state, "fields_cache", None), dict):
        state.fields_cache.clear()


class CloseCode:
    """Documented in docs/realtime.md."""

    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    REVOKED = 4408
    RATE_LIMITED = 4429
    BAD_MESSAGE = 4400


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Shared protocol: hello/resync, event forwarding with gap repair, heartbeat."""

    audience: ClassVar[str] = ""
    ctx: protocol.Audience | None = None
    cursor: int = 0
    groups_joined: list[str]

    async def dispatch(self, message: dict[str, Any]) -> None:
        """As channels' own, without its ``aclose_old_connections()`` before every message.

        That call is a trip through the one thread Django's synchronous code shares, made
        for consumers that use the ORM straight from async code. These never do: every
        query goes through ``database_sync_to_async`` (which closes stale connections
        around itself) or the ping writer's thread. With 2,000 sockets the trips were
        most of the per-message cost: every ping, push and heartbeat queued for the
        same thread (docs/performance.md, "Live fan-out")."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.groups_joined = []
        # On the thread pool, like every other read here: a thousand handshakes at once
        # (a fleet reconnecting) queued for the one shared thread outlast Daphne's 5 s
        # handshake timeout on a busy machine.
        ctx, code = await read_off_request_thread(self.authorize)()
        if ctx is None:
            # Accept then close, so the browser sees our close code (a rejected
            # handshake only ever reads as 1006).
            await self.accept()
            await self.close(code=code)
            return
        self.ctx = ctx
        _forget_related_rows(self.scope.get("user"))
        for group in ctx.groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        if ctx.user_id is not None:
            await self.channel_layer.group_add(user_group(ctx.user_id), self.channel_name)
            self.groups_joined.append(user_group(ctx.user_id))
        await self.accept()
        metrics.websocket_connections.labels(endpoint=self.audience).inc()
        self.cursor = ctx.last_seq
        await self.send_json({"type": "welcome", "audience": self.audience, "seq": ctx.last_seq,
                              "heartbeat_s": settings.REALTIME_HEARTBEAT_S})
        beats.add(self, ctx.org_id)

    def authorize(self) -> tuple[protocol.Audience | None, int]:
        raise PermissionError  # each endpoint says who may connect

    async def disconnect(self, code: int) -> None:
        if self.ctx is not None:
            metrics.websocket_connections.labels(endpoint=self.audience).dec()
            beats.discard(self, self.ctx.org_id)
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- client -> server ---------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.ctx is None:
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_json({"type": "error", "code": "bad_message", "message": "Send a JSON object with a type."})
            return
        kind = content["type"]
        if kind in ("hello", "resync"):
            last = content.get("last_seq", 0)
            if not isinstance(last, int) or isinstance(last, bool) or last < 0:
                await self.send_json({"type": "error", "code": "bad_message",
                                      "message": "last_seq must be a non-negative integer."})
                return
            await self.catch_up(from_seq=last, reason=kind)
        elif kind == "pong":
            return
        else:
            await self.receive_other(kind, content)

    async def receive_other(self, kind: str, content: dict[str, Any]) -> None:
        await self.send_json({"type": "error", "code": "unknown_type", "message": f"Unknown message type {kind!r}."})

    # --- resync ---------------------------------------------------------------

    async def catch_up(self, *, from_seq: int, reason: str) -> None:
        """Bring the client from ``from_seq`` to now: replay, or a snapshot if too far behind."""
        assert self.ctx is not None
        # A client with nothing (hello 0) and a bulk change (invalidate) need the whole
        # picture; everything else is a replay from a known position.
        fresh = (reason in ("hello", "resync") and from_seq == 0) or reason == "invalidate"
        result = await read_off_request_thread(protocol.catch_up)(self.ctx, from_seq, force_snapshot=fresh)
        if result.snapshot is not None:
            # In pages when it is large: one WebSocket message may not exceed 1 MiB.
            for frame in snapshot_frames(seq=result.seq, reason=reason, data=result.snapshot):
                await self.send(text_data=frame)
        elif result.events or reason in ("hello", "resync"):
            # A client that asked always gets an answer, even "nothing missed", so it
            # can tell "up to date" from "still replaying".
            await self.send_json({"type": "events", "events": result.events, "replayed": True, "seq": result.seq})
        self.cursor = max(self.cursor, result.seq) if reason != "hello" else result.seq

    # --- channel layer -> client ----------------------------------------------

    async def lastmile_events(self, message: dict[str, Any]) -> None:
        events = [e for e in message["events"] if e["seq"] > self.cursor]
        if not events:
            return
        if events[0]["seq"] != self.cursor + 1:
            # A push was lost, or (for drivers and trackers, who see a subset of the
            # log) events in between were not theirs: the log tells which.
            await self.catch_up(from_seq=self.cursor, reason="gap")
            events = [e for e in events if e["seq"] > self.cursor]
            if not events:
                return
        await self.send_json({"type": "events", "events": events})
        self.cursor = events[-1]["seq"]

    async def lastmile_invalidate(self, message: dict[str, Any]) -> None:
        if message["seq"] > self.cursor:
            await self.catch_up(from_seq=self.cursor, reason="invalidate")

    async def lastmile_control(self, message: dict[str, Any]) -> None:
        if message.get("action") == "revoke":
            await self.send_json({"type": "revoked", "message": message.get("message", "Access revoked.")})
            await self.close(code=CloseCode.REVOKED)

    async def lastmile_live(self, message: dict[str, Any]) -> None:
        """Ephemeral state (driver positions): not in the log, not sequenced by it."""
        await self.send_json(message["payload"])

    # --- heartbeat (apps/realtime/beats.py beats for every socket of the process) ---

    async def beat(self) -> None:
        # The beat goes out first: clients judge liveness by it.
        await self.send_json({"type": "heartbeat", "seq": self.cursor})
        # Re-join: a Redis restart forgets group memberships, and this socket would
        # otherwise never hear a push again. group_add is idempotent.
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)

    async def catch_up_from(self, log: protocol.LogSlice) -> None:
        """The beat's repair: what this socket missed, picked from its organization's
        new events, read once for every socket of the organization in this process."""
        assert self.ctx is not None
        events = [e for e in log.events if e["seq"] > self.cursor and protocol.concerns(self.ctx, e, log.route_drivers)]
        if events:
            await self.send_json({"type": "events", "events": events, "replayed": True, "seq": log.upto})
        self.cursor = max(self.cursor, log.upto)


class ConsoleConsumer(LiveConsumer):
    """`/ws/console/`: dispatchers and admins of one organization."""

    audience = "console"

    async def connect(self) -> None:
        await super().connect()
        if self.ctx is not None:
            from apps.tracking import fanout

            # Someone is watching: make sure this process runs the stale-location check
            # even if no driver has reported to it since it started.
            fanout.wake()

    def authorize(self) -> tuple[protocol.Audience | None, int]:
        return protocol.console_audience(self.scope.get("user"))


class DriverConsumer(LiveConsumer):
    """`/ws/driver/`: one driver. Receives changes to their own routes; sends location pings."""

    audience = "driver"

    def authorize(self) -> tuple[protocol.Audience | None, int]:
        return protocol.driver_audience(self.scope.get("user"))

    async def receive_other(self, kind: str, content: dict[str, Any]) -> None:
        if kind == "ping":
            await self.receive_pings([content])
        elif kind == "pings":
            pings = content.get("pings")
            if not isinstance(pings, list):
                await self.send_json({"type": "error", "code": "bad_message", "message": "pings must be a list."})
                return
            await self.receive_pings(pings)
        else:
            await super().receive_other(kind, content)

    async def receive_pings(self, pings: list[Any]) -> None:
        """Validated here, stored by this process's ping writer in its next group commit
        (apps/tracking/writer.py); acknowledged once stored."""
        assert self.ctx is not None and self.ctx.driver_id is not None
        from apps.tracking.writer import ping_writer

        try:
            result = await ping_writer.submit(org_id=self.ctx.org_id, driver_id=self.ctx.driver_id, pings=pings)
        except Exception:
            # Not stored (the database is away): no ack, so the phone keeps the pings and
            # sends them again once it has reconnected.
            logger.warning("pings of driver %s not stored; closing so the phone resends them", self.ctx.driver_id)
            await self.close(code=1011)
            return
        await self.send_json({"type": "pings.ack", **result})


class TrackConsumer(LiveConsumer):
    """`/ws/track/<token>/`: one customer's order, read-only."""

    audience = "track"

    def authorize(self) -> tuple[protocol.Audience | None, int]:
        from apps.tracking.ratelimit import allow

        client = self.scope.get("client") or ("unknown", 0)
        if not allow(str(client[0])):
            return None, CloseCode.RATE_LIMITED
        return protocol.track_audience(self.scope["url_route"]["kwargs"]["token"])
