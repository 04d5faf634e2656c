"""One simulated driver working their day, through the same API and socket as the PWA.

Log in; list today's routes; for each: start it if it is only published, then stop
by stop drive there, arrive, spend the order's service time, and deliver or fail;
finally drive back to the hub. A separate task pings the current position every
``ping_interval_s`` of wall time, so pings keep flowing while the driver drives,
waits or talks to the server. The route is re-read after every stop: a dispatcher
may reorder, add or remove stops while the driver is out.
"""

# ruff: noqa: S311  (seeded simulation randomness, not security)
from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from . import proof
from .client import ApiError, DriverSocket, HttpSession, LoginFailed, ServerUnreachable, SocketStats
from .movement import Leg, Point, Position, SimClock, drive_speed_mps, standing
from .noise import GpsNoise, displace
from .outcomes import stop_outcome

logger = logging.getLogger(__name__)

OPEN_STOP_STATES = ("pending", "arrived")
DRIVABLE_ROUTE_STATES = ("published", "in_progress")


@dataclass(frozen=True)
class DriverSettings:
    base_url: str
    username: str
    password: str
    day: date
    ping_interval_s: float = 3.0
    seed: int | str = 1
    once: bool = False
    # How long to keep trying while the server is not up yet (the start script launches
    # the simulator next to the server).
    connect_wait_s: float = 60.0
    # Between looks for a new route once the day's work is done (without --once).
    idle_poll_s: float = 30.0


@dataclass
class DriverReport:
    username: str
    name: str = ""
    routes_done: int = 0
    delivered: int = 0
    failed: int = 0
    pings: SocketStats = field(default_factory=SocketStats)
    error: str | None = None


class SimulatedDriver:
    def __init__(self, settings: DriverSettings, *, clock: SimClock,
                 wall_now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings, self.clock, self.wall_now = settings, clock, wall_now
        seed, username = settings.seed, settings.username
        # One stream per purpose, so a reconnect's backoff never shifts which stops fail.
        self.rng = random.Random(f"{seed}:{username}:outcomes")
        self.noise = GpsNoise(random.Random(f"{seed}:{username}:gps"))
        self.session = HttpSession(settings.base_url)
        self.socket = DriverSocket(self.session, log=self.say, relogin=self._login,
                                   rng=random.Random(f"{seed}:{username}:backoff"))
        self.report = DriverReport(username=username, pings=self.socket.stats)
        self.label = username
        self.point: Point | None = None
        self.heading = 0.0
        # Where the vehicle is at a sim time; None while off duty (no pings then).
        self.where: Callable[[float], Position] | None = None
        self._troubled: set[int] = set()
        # Proof images and action ids draw from their own streams: outcomes stay the same.
        self.proof_rng = random.Random(f"{seed}:{username}:proof")
        self._rules: dict[int, dict[str, Any]] = {}

    def say(self, message: str, level: int = logging.INFO) -> None:
        logger.log(level, "%s: %s", self.label, message)

    # --- the day ---------------------------------------------------------------------

    async def run(self) -> DriverReport:
        try:
            await self._login_when_up()
            routes = await self._todays_routes()
            if not routes:
                self.say(f"no route for {self.settings.day}; nothing to do")
                return self.report
            self.report.name = routes[0].get("driver_name") or ""
            self.label = f"{self.settings.username} {self.report.name}".strip()
            await self._work(routes)
        except (LoginFailed, ServerUnreachable, ApiError) as exc:
            self.report.error = str(exc)
            self.say(f"stopped: {exc}", logging.ERROR)
        return self.report

    async def _work(self, routes: list[dict[str, Any]]) -> None:
        socket_task = asyncio.create_task(self.socket.run(), name=f"{self.settings.username}-socket")
        pinger = asyncio.create_task(self._pinger(), name=f"{self.settings.username}-pinger")
        try:
            while True:
                for route in routes:
                    await self._drive_route(route["id"])
                self.where = None
                if self.settings.once:
                    self.say("all routes done")
                    return
                self.say("idle at the hub; looking for new routes every "
                         f"{self.settings.idle_poll_s:.0f} s")
                routes = []
                while not routes:
                    await asyncio.sleep(self.settings.idle_poll_s)
                    routes = await self._todays_routes()
        finally:
            pinger.cancel()
            if self.socket.connected:
                await asyncio.shield(self.socket.drain(timeout=5))
            await self.socket.close()
            socket_task.cancel()
            await asyncio.gather(pinger, socket_task, return_exceptions=True)

    async def _drive_route(self, route_id: int) -> None:
        route = await self._api("GET", f"/api/v1/routes/{route_id}/")
        if route["status"] not in DRIVABLE_ROUTE_STATES:
            return
        stops, name = route["stops"], route["name"] or f"route {route_id}"
        if self.point is None:
            self.point = self._starting_point(route)
        self.where = self._standing()
        if route["status"] == "published":
            route = await self._api("POST", f"/api/v1/routes/{route_id}/start/")
            self.say(f"started {name} with {len(stops)} stops")
        else:
            done = sum(s["state"] not in OPEN_STOP_STATES for s in stops)
            self.say(f"resuming {name}: {done} of {len(stops)} stops done")
        delivered, failed = self.report.delivered, self.report.failed
        while (stop := self._next_stop(route)) is not None:
            await self._work_stop(stop)
            route = await self._api("GET", f"/api/v1/routes/{route_id}/")
        if route["status"] == "in_progress":
            # Every remaining stop was cancelled or removed: nothing closed the route.
            route = await self._api("POST", f"/api/v1/routes/{route_id}/complete/")
        await self._drive_to(Point(route["end_lat"], route["end_lng"]), "the hub")
        self.report.routes_done += 1
        self.say(f"back at the hub; {name} done: {self.report.delivered - delivered} delivered, "
                 f"{self.report.failed - failed} failed")

    async def _work_stop(self, stop: dict[str, Any]) -> None:
        order = stop["order"]
        where = f"stop {stop['sequence']} ({order['address_line1']})"
        try:
            if stop["state"] == "pending":
                await self._drive_to(self._point_of(order), where)
                await self._act("arrive", stop)
                self.say(f"arrived at {where}")
            await self._stay(order.get("service_time_s") or 120)
            outcome = stop_outcome(self.rng)
            if outcome.delivered:
                await self._act("complete", stop, notes=outcome.notes, pod=await self._capture(stop))
                self.report.delivered += 1
                self.say(f"delivered {where} to {order['customer_name']}")
            else:
                await self._act("fail", stop, reason=outcome.reason, notes=outcome.notes)
                self.report.failed += 1
                self.say(f"failed {where}: {outcome.reason.replace('_', ' ')} ({outcome.notes})")
        except ApiError as exc:
            if exc.status not in (404, 409) or stop["id"] in self._troubled:
                raise
            self._troubled.add(stop["id"])
            # The dispatcher changed the stop while we were on the way; re-read the route.
            self.say(f"{where} changed on the server ({exc}); re-reading the route", logging.WARNING)

    async def _act(self, kind: str, stop: dict[str, Any], **body: Any) -> Any:
        """A driver action as the PWA sends it: one UUID per action, so the retries in
        _api (server down, 5xx) take effect once (docs/driver.md)."""
        action = {"id": str(uuid.UUID(int=self.proof_rng.getrandbits(128), version=4)), "type": kind, "stop": stop["id"],
                  "order": stop["order"]["id"], "route": stop["route"], "device_time": self.wall_now().isoformat(),
                  **body}
        return await self._api("POST", "/api/v1/driver/actions/", action)

    async def _capture(self, stop: dict[str, Any]) -> dict[str, Any]:
        """What the stop's rules ask for: photos and a signature uploaded first, then
        referenced by SHA-256; the PIN the customer reads out."""
        rules = await self._rules_of(stop)
        photo_count, wants_signature = proof.needs_upload(rules)
        photos = [await self._upload(proof.door_photo(self.proof_rng), "photo", stop) for _ in range(photo_count)]
        signature = await self._upload(proof.signature(self.proof_rng), "signature", stop) if wants_signature else None
        pin = await asyncio.to_thread(_customer_pin, stop["order"]["id"]) if rules.get("pin") else ""
        point = (self.point.lat, self.point.lng) if self.point is not None else None
        return proof.pod_body(rules, photos=photos, signature_sha=signature, recipient=stop["order"]["customer_name"],
                              pin=pin, point=point)

    async def _rules_of(self, stop: dict[str, Any]) -> dict[str, Any]:
        if stop["id"] not in self._rules:
            page = await self._api("GET", f"/api/v1/pod/requirements/?route={stop['route']}")
            self._rules.update({r["stop"]: r["rules"] for r in page["results"]})
        return self._rules.get(stop["id"], {})

    async def _upload(self, data: bytes, kind: str, stop: dict[str, Any]) -> str:
        sha = proof.sha256_hex(data)
        name, content_type = ("photo.jpg", "image/jpeg") if kind == "photo" else ("signature.png", "image/png")

        async def call() -> Any:
            return await self.session.upload("/api/v1/pod/media/", fields={"kind": kind, "sha256": sha,
                                                                          "stop": str(stop["id"])},
                                             file_field="file", filename=name, data=data, content_type=content_type)

        await self._retrying(call, waiting="photo upload failed; retrying")
        return sha

    # --- moving ----------------------------------------------------------------------

    async def _drive_to(self, target: Point, where: str) -> None:
        assert self.point is not None
        leg = Leg(origin=self.point, destination=target, depart_s=self.clock.now(),
                  speed_mps=drive_speed_mps(self.clock.speedup))
        if leg.straight_m >= 1:
            self.heading = leg.heading
            self.where = leg.at
            wall = self.clock.wall_seconds(leg.duration_s)
            self.say(f"driving to {where}: {_distance(leg.road_m)}, there in {_duration(wall)}")
            await asyncio.sleep(wall)
        self.point = target
        self.where = self._standing()

    async def _stay(self, sim_seconds: float) -> None:
        self.where = self._standing()
        await asyncio.sleep(self.clock.wall_seconds(sim_seconds))

    def _standing(self) -> Callable[[float], Position]:
        point, heading = self.point, self.heading
        assert point is not None
        return lambda _t: standing(point, heading)

    async def _pinger(self) -> None:
        while True:
            where = self.where
            if where is not None:
                await self.socket.send_ping(self.ping(where(self.clock.now())))
            await asyncio.sleep(self.settings.ping_interval_s)

    def ping(self, position: Position) -> dict[str, Any]:
        """A ping as the PWA sends it: the device's fix (true position + GPS error) at wall time."""
        at = self.wall_now()
        offset = self.noise.at(at.timestamp())
        lat, lng = displace(position.lat, position.lng, offset)
        return {"lat": round(lat, 6), "lng": round(lng, 6), "accuracy_m": offset.accuracy_m,
                "speed_mps": round(position.speed_mps, 1), "heading": round(position.heading) % 360,
                "at": at.isoformat(timespec="milliseconds")}

    # --- reading the server ---------------------------------------------------------

    async def _login(self) -> None:
        await self.session.login(self.settings.username, self.settings.password)

    async def _login_when_up(self) -> None:
        await self._retrying(self._login, waiting=f"waiting for the server at {self.session.origin}")

    async def _api(self, method: str, path: str, body: Any = None) -> Any:
        async def call() -> Any:
            try:
                return await (self.session.get(path) if method == "GET" else self.session.post(path, body))
            except ApiError as exc:
                if exc.status not in (401, 403):
                    raise
                # The session ended (expired, or the server's sessions were cleared): log in again, once.
                await self._login()
                return await (self.session.get(path) if method == "GET" else self.session.post(path, body))

        return await self._retrying(call, waiting=f"{method} {path} failed; retrying")

    async def _retrying(self, call: Callable[[], Awaitable[Any]], *, waiting: str) -> Any:
        """``call()``, retried with backoff for up to ``connect_wait_s`` while the server is
        down or failing (5xx), as the PWA queues its actions while offline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.connect_wait_s
        delay, said = 0.5, False
        while True:
            try:
                return await call()
            except (ServerUnreachable, ApiError) as exc:
                if (isinstance(exc, ApiError) and exc.status < 500) or loop.time() + delay > deadline:
                    raise
                if not said:
                    self.say(f"{waiting} ({exc})", logging.WARNING)
                    said = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _todays_routes(self) -> list[dict[str, Any]]:
        routes: list[dict[str, Any]] = []
        path: str | None = f"/api/v1/routes/?date={self.settings.day.isoformat()}"
        while path:
            page = await self._api("GET", path)
            routes += page["results"]
            path = page["next"].removeprefix(self.session.origin) if page.get("next") else None
        mine = [r for r in routes if r["status"] in DRIVABLE_ROUTE_STATES]
        return sorted(mine, key=lambda r: (r["planned_start"] or "", r["id"]))

    @staticmethod
    def _next_stop(route: dict[str, Any]) -> dict[str, Any] | None:
        open_stops = [s for s in route["stops"] if s["state"] in OPEN_STOP_STATES]
        return min(open_stops, key=lambda s: (s["sequence"], s["id"]), default=None)

    def _point_of(self, order: dict[str, Any]) -> Point:
        if order.get("lat") is None or order.get("lng") is None:
            # No coordinates: the driver finds the address without moving on our map.
            assert self.point is not None
            return self.point
        return Point(order["lat"], order["lng"])

    def _starting_point(self, route: dict[str, Any]) -> Point:
        """The hub, or for a route already under way, the last stop the driver reached."""
        reached = [s for s in route["stops"] if s["arrived_at"] and s["order"].get("lat") is not None]
        if route["status"] == "in_progress" and reached:
            last = max(reached, key=lambda s: s["arrived_at"])
            return Point(last["order"]["lat"], last["order"]["lng"])
        return Point(route["start_lat"], route["start_lng"])


def _distance(metres: float) -> str:
    return f"{metres / 1000:.1f} km" if metres >= 1000 else f"{metres:.0f} m"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _customer_pin(order_id: int) -> str:
    """The PIN the simulated customer reads out: the one the platform gave them. The
    simulator shares the server's settings (it runs next to it, as the demo does)."""
    from django.db import close_old_connections

    from apps.dispatch.models import Order
    from apps.pod.requirements import delivery_pin

    try:
        return delivery_pin(Order.objects.only("org_id").get(pk=order_id))
    finally:
        close_old_connections()
