"""Live fan-out: drivers pinging over ``/ws/driver/`` and consoles watching on
``/ws/console/``, through Daphne + Channels beside a minimal relay, in the same run.

    .venv/bin/python -m bench.realtime            # the recorded run: see docs/performance.md
    .venv/bin/python -m bench.realtime --quick    # 200 drivers, 5 consoles, well inside a minute

Needs PostgreSQL and Redis. Runs in its own database (default ``lastmile_rtbench``,
created and migrated if missing) and its own Redis database (default 9), with one
organization of N drivers and M dispatchers made in bulk, logged in through session
rows written directly (as ``tests/realtime/servers.py`` does one at a time).

Each configuration starts its own server processes on loopback, then this process
opens the N + M WebSockets (``websockets``, asyncio) and:

1. **steady**: every driver sends a ``ping`` every 5 s, staggered evenly, each with a
   unique device time ``at`` (its send time); every console records, for every
   position it receives, receive time - ``at`` (one machine, one clock). The first
   ``--warmup`` seconds are not counted. After the last round every console must hold
   every driver's final position (``final lost`` counts the pairs that do not).
2. **saturation**: ``--sat-drivers`` drivers (the same number for every configuration)
   send pings back to back, each waiting for its ``pings.ack``: the acknowledged
   pings/s is the throughput. The window is cut into ``--sat-rounds`` rounds, each
   measured on its own; the figure is their median (``best`` is the highest round),
   and the server's CPU over each round gives pings per CPU-second, which does not
   depend on how much of a busy machine the server got. On this shared machine one
   long window swung 2.5-fold from run to run with other people's work; the median of
   short rounds, and the per-CPU rate, are what the ratio to the relay is read from.

Server memory per client is the servers' VmRSS with every socket open minus with one
console open, divided by the clients; CPU is utime+stime over the steady window of
the servers, of the PostgreSQL backends of the bench database, of Redis (all of it:
``INFO cpu``) and of this process (the clients).

The baseline is ``bench/relay_baseline.py``: a plain ``websockets`` server that
PUBLISHes each ping to Redis and sends coalesced batches to consoles on the same
tick, with no Django, sessions or database. The same client code measures both.
The last line printed is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from bench.ingest import BASE_DIR, machine, server_env, setup_django

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lastmile_rtbench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
SLUG_PREFIX = "bench-rt-"
LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
INTERVAL_S = 5.0  # how often each driver pings (the driver app's foreground rate)
TARGET_DRIVERS, TARGET_CONSOLES = 2000, 20
TARGET_P99_MS = 250.0
TARGET_KB_PER_DRIVER = 100.0
TARGET_RATIO = 0.5
CONNECT_CONCURRENCY = 64  # handshakes in flight at once (a reconnect storm, throttled)
PHASE_TIMEOUT_S = 600.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
BERLIN = (52.40, 52.62, 13.15, 13.70)


# --- the fleet ------------------------------------------------------------------


@dataclass
class Fleet:
    org_id: int
    driver_ids: list[int]
    driver_cookies: list[str]
    console_cookies: list[str]
    session_keys: list[str] = field(default_factory=list)


def _raise_id_sequences() -> None:
    """Start ids at 10^9 in the bench database. Group names carry ids (``org.7``,
    ``driver.12``) and Redis Pub/Sub channels are not per Redis database, so a test
    run on the same Redis with the Pub/Sub layer could otherwise hear our pushes."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.accounts.models import Organization
    from apps.dispatch.models import Driver

    with connection.cursor() as cursor:
        for model in (Organization, get_user_model(), Driver):
            table = model._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                           f"GREATEST(1000000000, (SELECT COALESCE(MAX(id), 0) FROM {table})))", [table])


def fleet_create(run_id: str, drivers: int, consoles: int) -> Fleet:
    """One organization with ``drivers`` on-duty drivers and ``consoles`` dispatchers,
    each with a session: bulk inserts, one password hash for all (nobody logs in)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.models import Membership, Role
    from apps.accounts.services import organization_create
    from apps.dispatch.models import Driver
    from apps.tracking.models import DriverPosition

    User = get_user_model()
    password = make_password(secrets.token_urlsafe(16))
    now = timezone.now()
    with transaction.atomic():
        org = organization_create(name=f"Realtime bench {run_id}", slug=f"{SLUG_PREFIX}{run_id}")
        driver_users = User.objects.bulk_create(
            [User(username=f"rt-{run_id}-driver-{i}", password=password) for i in range(drivers)], batch_size=1000)
        console_users = User.objects.bulk_create(
            [User(username=f"rt-{run_id}-console-{i}", password=password, is_staff=True) for i in range(consoles)])
        Membership.objects.bulk_create([Membership(user=u, org=org, role=Role.DRIVER) for u in driver_users]
                                        + [Membership(user=u, org=org, role=Role.DISPATCHER) for u in console_users],
                                        batch_size=1000)
        rows = Driver.objects.bulk_create([
            Driver(org=org, user=u, name=f"Driver {i}", shift_start=clock(6), shift_end=clock(22), on_duty=True)
            for i, u in enumerate(driver_users)
        ], batch_size=1000)
        # On duty and heard from now: the stale check (every 30 s in each server) has
        # real rows to scan but raises no alerts; fleet_refresh keeps it so.
        DriverPosition.objects.bulk_create([DriverPosition(driver=d, org=org, last_ping_at=now) for d in rows],
                                           batch_size=1000)
        store = SessionStore()
        auth_hash = driver_users[0].get_session_auth_hash() if driver_users else ""
        cookies: dict[int, str] = {}
        sessions = []
        for user in driver_users + console_users:
            key = secrets.token_hex(16)
            data = {"_auth_user_id": str(user.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                    "_auth_user_hash": auth_hash}
            sessions.append(Session(session_key=key, session_data=store.encode(data),
                                    expire_date=now + timedelta(days=1)))
            cookies[user.pk] = f"sessionid={key}"
        Session.objects.bulk_create(sessions, batch_size=1000)
    return Fleet(org_id=org.pk, driver_ids=[d.pk for d in rows],
                 driver_cookies=[cookies[u.pk] for u in driver_users],
                 console_cookies=[cookies[u.pk] for u in console_users],
                 session_keys=[session.session_key for session in sessions])


def fleet_refresh(fleet: Fleet) -> None:
    """Mark every driver as heard from now, so drivers idle between configurations
    never turn stale mid-measurement (a stale alert would push events to everyone)."""
    from django.utils import timezone

    from apps.tracking.models import DriverPosition

    DriverPosition.objects.filter(org_id=fleet.org_id).update(last_ping_at=timezone.now())


def cleanup(run_id: str | None = None, session_keys: list[str] | None = None) -> None:
    """Remove this run's organization, people and sessions (or, without a run id, what
    a crashed run left: its sessions then simply expire, their users gone)."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session
    from django.db import connection, transaction

    from apps.accounts.models import Membership, Organization
    from apps.dispatch.models import Driver
    from apps.events.models import Event
    from apps.tracking.models import DriverPosition, LocationPing

    User = get_user_model()
    for org_id, slug in Organization.objects.filter(slug__startswith=f"{SLUG_PREFIX}{run_id or ''}").values_list(
            "pk", "slug"):
        with transaction.atomic(), connection.cursor() as cursor:
            # Statements, not the ORM's cascade, which would load every ping first.
            for model in (LocationPing, DriverPosition, Event, Driver, Membership):
                cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE org_id = %s", [org_id])
            User.objects.filter(username__startswith=f"rt-{slug.removeprefix(SLUG_PREFIX)}-").delete()
            Organization.objects.filter(pk=org_id).delete()
    if session_keys:
        Session.objects.filter(session_key__in=session_keys).delete()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_relay_ping")  # relay_baseline.py --database-url


# --- processes ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def postgres_backends(dbname: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``dbname`` (by its process title)."""
    out = {}
    needle = f" {dbname} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"postgres: ") and needle in title:
                out[int(entry.name)] = cpu_seconds(int(entry.name))
        except OSError:
            continue
    return out


def redis_cpu_seconds(redis_url: str) -> float:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    finally:
        client.close()


@dataclass
class Server:
    """One server process on a free loopback port: Daphne, or the baseline relay."""

    kind: str  # "daphne" | "relay"
    argv: list[str]
    env: dict[str, str]
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Any = None

    def start(self) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.proc = subprocess.Popen(argv, cwd=BASE_DIR, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start:\n{self.output()}")

    def output(self) -> str:
        """The end of what the server printed, without daphne's access log lines."""
        if self.log is None:
            return ""
        self.log.seek(0)
        lines = [line for line in self.log.read().decode(errors="replace").splitlines()
                 if not any(f'"{verb} ' in line for verb in ("WSCONNECTING", "WSCONNECT", "WSDISCONNECT", "WSREJECT"))]
        status = self.proc.poll() if self.proc is not None else None
        return "\n".join(lines)[-3000:] + ("" if status is None else f"\n(exited with status {status})")

    def problems(self) -> dict[str, int]:
        """Warnings and errors the server logged, counted by their first words."""
        if self.log is None:
            return {}
        self.log.seek(0)
        found: dict[str, int] = {}
        for line in self.log.read().decode(errors="replace").splitlines():
            for level in (" WARNING ", " ERROR ", " CRITICAL "):
                if level in line:
                    key = line.split(level, 1)[1][:110]
                    key = "".join("#" if ch.isdigit() else ch for ch in key)
                    found[key] = found.get(key, 0) + 1
        return found

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, driver_id: int | None = None) -> str:
        url = f"ws://127.0.0.1:{self.port}{path}"
        if self.kind == "relay" and driver_id is not None:
            url += f"?driver={driver_id}"  # the relay has no sessions: it is told who drives
        return url


def daphne_server(database_url: str, redis_url: str, layer: str, tick: float, app: str) -> Server:
    env = server_env(database_url)
    env.update(REDIS_URL=redis_url, CHANNEL_LAYER_BACKEND=LAYERS[layer], LOCATION_FANOUT_TICK_S=str(tick),
               PYTHONUNBUFFERED="1")
    daphne = str(Path(sys.executable).parent / "daphne")
    return Server("daphne", [daphne, "-b", "127.0.0.1", "-p", "{port}", app], env)


def relay_server(redis_url: str, tick: float, channel: str, database_url: str = "") -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    store = ["--database-url", database_url] if database_url else []
    return Server("relay", [sys.executable, "-m", "bench.relay_baseline", "--port", "{port}", "--redis-url", redis_url,
                            "--tick", str(tick), "--channel", channel, *store], env)


# --- the clients ------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class Driver:
    """One driver's phone: a socket, a position that creeps north, and its acks."""

    def __init__(self, driver_id: int, ws: Any, lat: float, lng: float) -> None:
        self.driver_id, self.ws, self.lat, self.lng = driver_id, ws, lat, lng
        self.sent_at: deque[float] = deque()  # perf_counter of pings awaiting their ack
        self.waiter: asyncio.Future[None] | None = None
        self.last_at = ""
        self.sent = self.acked = self.rejected = self.flagged = 0
        self.ack_ms: array[float] = array("d")
        self.count_acks_from = math.inf  # perf_counter: acks of pings sent earlier are not recorded

    async def ping(self) -> float:
        """Send one ping now; return its device time (or NaN if the socket is gone)."""
        if self.ws.close_code is not None:
            return math.nan
        now = time.time()
        self.lat += 0.00005  # ~5.5 m per ping: moving, and never a "jump" to the filters
        self.last_at = _iso(now)
        self.sent_at.append(time.perf_counter())
        self.sent += 1
        try:
            await self.ws.send(json.dumps({"type": "ping", "lat": round(self.lat, 6), "lng": self.lng,
                                           "accuracy_m": 8, "speed_mps": 1.1, "heading": 0, "at": self.last_at}))
        except Exception:  # closed under us: the reader records why
            return math.nan
        return now

    def on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") != "pings.ack":
            return
        sent = self.sent_at.popleft() if self.sent_at else time.perf_counter()
        self.acked += 1
        self.rejected += len(message.get("rejected", []))
        self.flagged += message.get("flagged", 0)
        if sent >= self.count_acks_from:
            self.ack_ms.append((time.perf_counter() - sent) * 1000)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Console:
    """One dispatcher's console: records the latency of every position it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.latest: dict[int, float] = {}  # driver id -> newest device time seen
        self.latency_ms: array[float] = array("d")
        self.received = 0
        self.window = (math.inf, math.inf)  # device times inside it are counted
        self.messages = 0
        self.snapshots = 0  # snapshots after the first (resyncs)

    def on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") in ("snapshot", "snapshot.page"):
            # A resync's snapshot carries every driver's latest position (in its pages when
            # it is large), and the console applies them as it does live ones: they count
            # for the final positions, not for latency.
            for position in (message.get("data") or {}).get("positions") or []:
                at = _ts(position["at"])
                if at > self.latest.get(position["driver_id"], 0.0):
                    self.latest[position["driver_id"]] = at
            self.snapshots += message.get("type") == "snapshot"
            return
        if message.get("type") != "positions":
            return
        now = time.time()
        self.messages += 1
        start, end = self.window
        for position in message["positions"]:
            at = _ts(position["at"])
            if at > self.latest.get(position["driver_id"], 0.0):
                self.latest[position["driver_id"]] = at
            if start <= at < end:
                self.received += 1
                self.latency_ms.append((now - at) * 1000)


async def _read(ws: Any, client: Driver | Console, closed: list[str]) -> None:
    try:
        async for frame in ws:
            client.on_message(json.loads(frame))
    except Exception as exc:  # a dropped socket is a finding, not a crash
        closed.append(f"{type(client).__name__}: {exc!r}")
    else:
        closed.append(f"{type(client).__name__}: closed {ws.close_code}")


async def _open(url: str, cookie: str, origin: str, gate: asyncio.Semaphore, refused: list[str] | None = None) -> Any:
    """Connect, read ``welcome``, say ``hello`` with nothing, wait for the ``snapshot``.
    A refused or failed handshake is retried with backoff, as frontend/common/live.js
    does (1 s doubling), for up to two minutes; each failure is recorded in ``refused``."""
    import websockets

    delay, deadline = 1.0, time.monotonic() + 120
    while True:
        try:
            async with gate:
                ws = await websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": origin},
                                              open_timeout=60, ping_interval=None, max_size=1 << 26, max_queue=256)
                async with asyncio.timeout(120):
                    welcome = json.loads(await ws.recv())
                    if welcome.get("type") != "welcome":
                        raise RuntimeError(f"{url}: expected welcome, got {welcome}")
                    await ws.send(json.dumps({"type": "hello", "last_seq": 0}))
                    while json.loads(await ws.recv()).get("type") != "snapshot":
                        pass
                return ws
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed) as exc:
            if refused is None or time.monotonic() + delay > deadline:
                raise
            refused.append(f"{type(exc).__name__}: {exc}"[:100])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


# --- one configuration ---------------------------------------------------------------


@dataclass
class Config:
    label: str
    kind: str  # "daphne" | "relay"
    layer: str  # "core" | "pubsub" | "-"
    servers: int
    tick: float
    drivers: int
    consoles: int
    saturate: bool = True


@dataclass
class Outcome:
    config: Config
    connect_s: float = 0.0
    rss_idle_kb: int = 0
    rss_connected_kb: int = 0
    rss_after_kb: int = 0
    window_s: float = 0.0
    pings_in_window: int = 0
    acks_in_window: int = 0
    expected_positions: int = 0
    received_positions: int = 0
    latency_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    final_lost: int = 0
    final_total: int = 0
    rejected: int = 0
    flagged: int = 0
    closed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # handshakes that failed and were retried
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core over the window
    idle_cpu: dict[str, float] = field(default_factory=dict)  # the same, all connected and nobody pinging
    sat_pings_per_s: float = 0.0  # the median round
    sat_rounds: list[float] = field(default_factory=list)  # pings/s of each round
    sat_per_cpu: list[float] = field(default_factory=list)  # pings per server CPU-second, each round
    sat_cpu: dict[str, float] = field(default_factory=dict)
    sat_ack_ms: list[float] = field(default_factory=list)
    sat_from_steady: bool = False
    backlog: int = 0  # pings still unacknowledged ``drain`` seconds after the last round
    server_log: dict[str, int] = field(default_factory=dict)  # warnings and errors, counted
    load: float = 0.0
    resyncs: int = 0  # snapshots consoles received after connecting (an invalidate, a far-behind beat)

    @property
    def sat_best(self) -> float:
        return max(self.sat_rounds, default=self.sat_pings_per_s)

    @property
    def sat_per_cpu_median(self) -> float:
        return statistics.median(self.sat_per_cpu) if self.sat_per_cpu else math.nan

    @property
    def offered(self) -> float:
        return self.config.drivers / INTERVAL_S

    @property
    def pings_per_s(self) -> float:
        return self.acks_in_window / self.window_s if self.window_s else 0.0

    @property
    def clients(self) -> int:
        return self.config.drivers + self.config.consoles

    @property
    def kb_per_client(self) -> float:
        return max(self.rss_connected_kb, self.rss_after_kb) - self.rss_idle_kb

    def p(self, q: float, values: list[float] | None = None) -> float:
        return percentile(self.latency_ms if values is None else values, q)

    @property
    def kb_per_driver(self) -> float:
        """Everything the servers grew by, consoles included, charged to the drivers: the
        target's unit, and the conservative reading. The larger of right after connecting
        and after the steady load (buffers and caches grow under traffic)."""
        return self.kb_per_client / self.config.drivers if self.config.drivers else 0.0

    @property
    def healthy(self) -> bool:
        """Kept up: the latency target, every final position, every ping acknowledged."""
        return (bool(self.latency_ms) and self.p(0.99) < TARGET_P99_MS and self.final_lost == 0
                and not self.closed and not self.backlog
                and self.pings_per_s >= 0.98 * self.pings_in_window / self.window_s)


def percentile(values: list[float] | array, q: float) -> float:
    """Nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Meter:
    """CPU seconds of the servers, the bench database's backends, Redis and this process."""

    def __init__(self, pids: list[int], dbname: str, redis_url: str) -> None:
        self.pids, self.dbname, self.redis_url = pids, dbname, redis_url

    def sample(self) -> dict[str, Any]:
        return {"t": time.monotonic(), "server": sum(cpu_seconds(p) for p in self.pids),
                "postgres": postgres_backends(self.dbname), "redis": redis_cpu_seconds(self.redis_url),
                "client": time.process_time(), "machine": _machine_busy()}

    @staticmethod
    def shares(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        """Each party's CPU as a share of one core (1.0 = one core busy) between a and b."""
        span = b["t"] - a["t"]
        pg = sum(cpu - a["postgres"].get(pid, 0.0) for pid, cpu in b["postgres"].items())
        busy = (b["machine"][0] - a["machine"][0]) / max(1, b["machine"][1] - a["machine"][1]) * (os.cpu_count() or 1)
        return {"server": (b["server"] - a["server"]) / span, "postgres": pg / span,
                "redis": (b["redis"] - a["redis"]) / span, "client": (b["client"] - a["client"]) / span,
                "machine": busy}


def _machine_busy() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


async def run_config(cfg: Config, servers: list[Server], fleet: Fleet, *, idle: float, warmup: float,
                     duration: float, saturation: float, sat_drivers: int, drain: float, dbname: str, redis_url: str,
                     sat_rounds: int = 1) -> Outcome:
    out = Outcome(cfg)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    closed: list[str] = []
    readers: list[asyncio.Task[None]] = []
    meter = Meter([s.pid for s in servers], dbname, redis_url)
    pids = [s.pid for s in servers]
    sockets: list[Any] = []
    try:
        # A warm server: one console in (code paths imported, database connection open),
        # then idle memory.
        refused = out.refused
        # Retried like the rest: on a busy machine the first connection (imports, the first
        # database connection) can outlast Daphne's 5 s handshake timeout.
        first = await _open(servers[0].url("/ws/console/"), fleet.console_cookies[0], servers[0].origin, gate,
                            refused)
        consoles = [Console(first)]
        sockets.append(first)
        await asyncio.sleep(1.0)
        out.rss_idle_kb = sum(rss_kb(p) for p in pids)

        started = time.perf_counter()
        rng_lat = [BERLIN[0] + (BERLIN[1] - BERLIN[0]) * ((i * 7919) % 1000) / 1000 for i in range(cfg.drivers)]
        rng_lng = [BERLIN[2] + (BERLIN[3] - BERLIN[2]) * ((i * 104729) % 1000) / 1000 for i in range(cfg.drivers)]

        async def open_driver(i: int) -> Driver:
            server = servers[i % len(servers)]
            ws = await _open(server.url("/ws/driver/", fleet.driver_ids[i]), fleet.driver_cookies[i], server.origin,
                             gate, refused)
            sockets.append(ws)
            return Driver(fleet.driver_ids[i], ws, rng_lat[i], rng_lng[i])

        async def open_console(j: int) -> Console:
            server = servers[j % len(servers)]
            ws = await _open(server.url("/ws/console/"), fleet.console_cookies[j], server.origin, gate, refused)
            sockets.append(ws)
            return Console(ws)

        drivers = list(await asyncio.gather(*(open_driver(i) for i in range(cfg.drivers))))
        consoles += await asyncio.gather(*(open_console(j) for j in range(1, cfg.consoles)))
        out.connect_s = time.perf_counter() - started
        for client in [*drivers, *consoles]:
            readers.append(asyncio.create_task(_read(client.ws, client, closed)))
        await asyncio.sleep(1.0)
        out.rss_connected_kb = sum(rss_kb(p) for p in pids)
        if idle > 0:
            # Every socket open, nobody pinging: what keeping them costs (heartbeats, pings).
            a = meter.sample()
            await asyncio.sleep(idle)
            out.idle_cpu = Meter.shares(a, meter.sample())

        # --- steady: every driver every INTERVAL_S, staggered ---------------------------
        t0 = time.time() + 0.5
        window = (t0 + warmup, t0 + warmup + duration)
        for console in consoles:
            console.window = window
        count_from = time.perf_counter() + (window[0] - time.time())
        for driver in drivers:
            driver.count_acks_from = count_from

        async def drive(i: int, driver: Driver) -> int:
            at, sent_in_window = t0 + INTERVAL_S * i / len(drivers), 0
            while at < window[1]:
                await asyncio.sleep(max(0.0, at - time.time()))
                sent = await driver.ping()
                sent_in_window += window[0] <= sent < window[1]
                at += INTERVAL_S
            return sent_in_window

        async def sample_at(when: float) -> dict[str, Any]:
            await asyncio.sleep(max(0.0, when - time.time()))
            return meter.sample()

        acks_before = asyncio.create_task(_acks_at(drivers, window[0]))
        acks_after = asyncio.create_task(_acks_at(drivers, window[1]))
        first_sample = asyncio.create_task(sample_at(window[0]))
        last_sample = asyncio.create_task(sample_at(window[1]))
        sent_counts = await asyncio.gather(*(drive(i, d) for i, d in enumerate(drivers)))
        a, b = await first_sample, await last_sample
        out.cpu = Meter.shares(a, b)
        out.window_s = b["t"] - a["t"]
        out.pings_in_window = sum(sent_counts)
        out.acks_in_window = await acks_after - await acks_before

        # Every console must end with every driver's final position. A server that fell
        # behind gets ``drain`` seconds to catch up; what it still owes is its backlog.
        finals = {d.driver_id: _ts(d.last_at) for d in drivers if d.last_at}  # a socket closed early sent none
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            if all(c.latest.get(k) == v for c in consoles for k, v in finals.items()):
                break
            await asyncio.sleep(0.1)
        out.backlog = sum(len(d.sent_at) for d in drivers)
        out.final_total = len(finals) * len(consoles)
        out.final_lost = sum(1 for c in consoles for k, v in finals.items() if c.latest.get(k) != v)
        out.rss_after_kb = sum(rss_kb(p) for p in pids)
        out.expected_positions = out.pings_in_window * len(consoles)
        out.received_positions = sum(c.received for c in consoles)
        out.resyncs = sum(c.snapshots for c in consoles)
        out.latency_ms = [v for c in consoles for v in c.latency_ms]
        out.ack_ms = [v for d in drivers for v in d.ack_ms]
        out.rejected = sum(d.rejected for d in drivers)
        out.flagged = sum(d.flagged for d in drivers)
        out.closed = list(closed)
        for console in consoles:
            console.window = (math.inf, math.inf)

        # --- saturation: back to back, one ping in flight per driver -------------------
        if out.backlog:
            # Already saturated by the steady load: its acknowledged rate is the throughput,
            # and hammering a server with thousands of pings queued would measure the queue.
            out.sat_pings_per_s, out.sat_cpu, out.sat_from_steady = out.pings_per_s, out.cpu, True
        elif cfg.saturate and saturation > 0:
            busy = drivers[:sat_drivers]
            stop_at = time.time() + 1.0 + saturation
            for d in busy:
                d.count_acks_from = math.inf
            counted_from = time.perf_counter() + 1.0  # a second to fill the pipeline

            async def hammer(driver: Driver) -> None:
                loop = asyncio.get_running_loop()
                while time.time() < stop_at and not closed:
                    driver.waiter = loop.create_future()
                    if math.isnan(await driver.ping()):
                        return
                    try:
                        async with asyncio.timeout(30):
                            await driver.waiter
                    except TimeoutError:
                        closed.append(f"Driver {driver.driver_id}: no ack within 30 s")
                        return

            for d in busy:
                d.count_acks_from = counted_from
                d.ack_ms = array("d")
            # Round boundaries: a second to fill the pipeline, then ``sat_rounds`` equal rounds.
            start = stop_at - saturation
            edges = [start + saturation * k / sat_rounds for k in range(sat_rounds + 1)]
            acks = [asyncio.create_task(_acks_at(busy, t)) for t in edges]
            cpus = [asyncio.create_task(sample_at(t)) for t in edges]
            await asyncio.gather(*(hammer(d) for d in busy))
            counts = [await t for t in acks]
            samples = [await t for t in cpus]
            for k in range(sat_rounds):
                a, b = samples[k], samples[k + 1]
                rate = (counts[k + 1] - counts[k]) / (b["t"] - a["t"])
                share = Meter.shares(a, b).get("server", 0.0)
                out.sat_rounds.append(rate)
                out.sat_per_cpu.append(rate / share if share > 0 else math.nan)
            out.sat_pings_per_s = statistics.median(out.sat_rounds)
            out.sat_cpu = Meter.shares(samples[0], samples[-1])
            out.sat_ack_ms = [v for d in busy for v in d.ack_ms]
            out.closed += closed[len(out.closed):]
        out.load = os.getloadavg()[0]
        return out
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(_close(ws) for ws in sockets))


async def _acks_at(drivers: list[Driver], when: float) -> int:
    await asyncio.sleep(max(0.0, when - time.time()))
    return sum(d.acked for d in drivers)


async def _close(ws: Any) -> None:
    with contextlib.suppress(Exception):  # gone already, or stuck: its server is stopped next anyway
        async with asyncio.timeout(5):
            await ws.close()


def measure(cfg: Config, fleet: Fleet, args: argparse.Namespace, run_id: str) -> Outcome:
    fleet_refresh(fleet)
    if cfg.kind == "relay":
        store = args.database_url if cfg.layer == "+pg" else ""
        servers = [relay_server(args.redis_url, cfg.tick, f"lastmile-bench-relay.{run_id}", store)
                   for _ in range(cfg.servers)]
    else:
        servers = [daphne_server(args.database_url, args.redis_url, cfg.layer, cfg.tick, args.asgi_app)
                   for _ in range(cfg.servers)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_up()
        sub = Fleet(fleet.org_id, fleet.driver_ids[:cfg.drivers], fleet.driver_cookies[:cfg.drivers],
                    fleet.console_cookies[:cfg.consoles])
        coroutine = run_config(cfg, servers, sub, idle=args.idle, warmup=args.warmup, duration=args.duration,
                               saturation=args.saturation, sat_drivers=min(cfg.drivers, args.sat_drivers),
                               drain=args.drain, dbname=args.database_url.rsplit("/", 1)[1],
                               redis_url=args.redis_url, sat_rounds=args.sat_rounds)
        out = asyncio.run(asyncio.wait_for(coroutine, PHASE_TIMEOUT_S))
        for n, server in enumerate(servers):
            if args.keep_logs:
                Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
                server.log.seek(0)
                name = f"{cfg.label.split(' (')[0].replace(' ', '-')}-{cfg.drivers}-{n}.log"
                (Path(args.keep_logs) / name).write_bytes(server.log.read())
            for key, count in server.problems().items():
                out.server_log[key] = out.server_log.get(key, 0) + count
    except BaseException:
        for server in servers:
            print(f"--- {server.kind} output:\n{server.output()}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            server.stop()
    print(f"  {row(out)}", flush=True)
    if out.sat_rounds:
        print(f"    saturation rounds: {' '.join(f'{r:.0f}' for r in out.sat_rounds)} pings/s "
              f"(median {out.sat_pings_per_s:.0f}, best {out.sat_best:.0f}); per server CPU-second "
              f"{' '.join(f'{r:.0f}' for r in out.sat_per_cpu)}", flush=True)
    for line in notes(out):
        print(f"    {line}", flush=True)
    return out


def notes(o: Outcome) -> list[str]:
    """Why sockets closed and what the servers complained about, briefly."""
    lines = []
    if o.resyncs:
        lines.append(f"consoles resynced with a snapshot {o.resyncs} times")
    for reason in sorted(set(o.closed))[:3]:
        lines.append(f"closed: {reason} (x{o.closed.count(reason)})")
    for reason in sorted(set(o.refused))[:3]:
        lines.append(f"handshake retried: {reason} (x{o.refused.count(reason)})")
    for key, count in sorted(o.server_log.items(), key=lambda kv: -kv[1])[:4]:
        lines.append(f"server log x{count}: {key}")
    return lines


# --- the report ---------------------------------------------------------------------


HEADER = (f"{'configuration':<30}{'drivers':>8}{'cons':>5}{'conn s':>7}{'pings/s':>8}{'ack p50/p99':>13}"
          f"{'position p50/p95/p99 ms':>25}{'deliv':>7}{'final lost':>11}{'KB/drv':>7}{'sat pings/s':>12}")


def _ms(value: float, width: int) -> str:
    return f"{'-' if math.isnan(value) else f'{value:.0f}':>{width}}"


def row(o: Outcome) -> str:
    c = o.config
    deliv = o.received_positions / o.expected_positions if o.expected_positions else math.nan
    sat = (f"{o.sat_pings_per_s:.0f}" + ("*" if o.sat_from_steady else "")) if o.sat_pings_per_s else "-"
    return (f"{c.label:<30}{c.drivers:>8}{c.consoles:>5}{o.connect_s:>7.1f}{o.pings_per_s:>8.0f}"
            f"{_ms(o.p(0.5, o.ack_ms), 6)} /{_ms(o.p(0.99, o.ack_ms), 5)}"
            f"{_ms(o.p(0.5), 10)} /{_ms(o.p(0.95), 5)} /{_ms(o.p(0.99), 5)}{deliv:>7.1%}"
            f"{o.final_lost:>6} /{o.final_total:<5}{o.kb_per_driver:>6.0f}{sat:>12}"
            + (f"   backlog {o.backlog} pings" if o.backlog else "")
            + (f"   {len(o.refused)} handshakes retried" if o.refused else "")
            + (f"   {len(o.closed)} sockets closed" if o.closed else "")
            + (f"   {o.rejected} rejected, {o.flagged} flagged" if o.rejected or o.flagged else ""))


def cpu_row(o: Outcome) -> str:
    cpu = o.cpu
    return (f"{o.config.label:<30}{o.idle_cpu.get('server', 0):>6.0%}{o.idle_cpu.get('postgres', 0):>6.0%}"
            f"{cpu.get('server', 0):>8.0%}{cpu.get('postgres', 0):>10.0%}{cpu.get('redis', 0):>7.0%}"
            f"{cpu.get('client', 0):>8.0%}{cpu.get('machine', 0):>9.0%}"
            f"{o.sat_cpu.get('server', 0):>8.0%} /{o.sat_cpu.get('client', 0):>4.0%}"
            f"{o.rss_idle_kb / 1024:>9.0f} →{o.rss_connected_kb / 1024:>5.0f} →{o.rss_after_kb / 1024:>5.0f}"
            f"{o.kb_per_client / o.clients if o.clients else 0:>8.0f}{o.load:>7.1f}")


CPU_HEADER = (f"{'CPU, 100% = one core':<30}{'idle: srv':>9}{'pg':>4}"
              f"{'server':>8}{'postgres':>10}{'redis':>7}{'client':>8}{'machine':>9}{'sat: srv / cli':>15}"
              f"{'server RSS MB idle → conn → after':>37}{'KB/cli':>8}{'load':>7}")


def headline(ours: Outcome, relay: Outcome) -> str:
    """The figures against the target, each criterion marked. "Half the relay's
    throughput" is read two ways and both are printed: at the offered load (pings/s
    acknowledged while every driver pings every 5 s) and at saturation (drivers pinging
    back to back); the verdict needs both."""
    c = ours.config
    sat_ratio = ours.sat_pings_per_s / relay.sat_pings_per_s if relay.sat_pings_per_s else math.nan
    best_ratio = ours.sat_best / relay.sat_best if relay.sat_best else math.nan
    cpu_ratio = ours.sat_per_cpu_median / relay.sat_per_cpu_median if relay.sat_per_cpu else math.nan
    load_ratio = ours.pings_per_s / relay.pings_per_s if relay.pings_per_s else math.nan
    checks = {
        f"p99<{TARGET_P99_MS:.0f}ms": bool(ours.latency_ms) and ours.p(0.99) < TARGET_P99_MS,
        "no lost final": ours.final_lost == 0 and not ours.closed and not ours.backlog,
        f"<={TARGET_KB_PER_DRIVER:.0f}KB": ours.kb_per_driver <= TARGET_KB_PER_DRIVER,
        f">={TARGET_RATIO}x relay at load": load_ratio >= TARGET_RATIO and ours.pings_per_s >= 0.98 * ours.offered,
        f">={TARGET_RATIO}x relay at saturation": sat_ratio >= TARGET_RATIO,
    }
    met = all(checks.values())
    marks = ", ".join(f"{name} {'ok' if ok else 'NO'}" for name, ok in checks.items())
    scale = "" if (c.drivers, c.consoles) == (TARGET_DRIVERS, TARGET_CONSOLES) else "; target is at 2000/20"
    return (f"realtime: {c.drivers} drivers {c.consoles} consoles {c.label.split(' ', 1)[1]} "
            f"p99={_ms(ours.p(0.99), 0)}ms pings/s={ours.pings_per_s:.0f}={load_ratio:.2f}x relay "
            f"final lost={ours.final_lost} mem/driver={ours.kb_per_driver:.0f}KB "
            f"saturation median={ours.sat_pings_per_s:.0f}/s={sat_ratio:.2f}x relay "
            f"(best {best_ratio:.2f}x, per server CPU-s {cpu_ratio:.2f}x) "
            f"vs relay p99={_ms(relay.p(0.99), 0)}ms pings/s={relay.pings_per_s:.0f} "
            f"saturation median={relay.sat_pings_per_s:.0f}/s load={ours.load:.1f} "
            f"({marks}{scale}: {'met' if met else 'MISSED'})")


def knee(sweep: list[Outcome]) -> str:
    ordered = sorted(sweep, key=lambda o: o.config.drivers)
    good = [o for o in ordered if o.healthy]
    bad = [o for o in ordered if not o.healthy]
    if not bad:
        return f"knee: not reached; healthy up to {ordered[-1].config.drivers} drivers ({ordered[-1].offered:.0f} pings/s)"
    first_bad = bad[0]
    last_good = max((o for o in good if o.config.drivers < first_bad.config.drivers),
                    key=lambda o: o.config.drivers, default=None)
    low = f"{last_good.config.drivers} drivers ({last_good.offered:.0f} pings/s, p99 {last_good.p(0.99):.0f} ms)" \
        if last_good else "the smallest size measured"
    return (f"knee: between {low} and {first_bad.config.drivers} drivers ({first_bad.offered:.0f} pings/s offered, "
            f"{first_bad.pings_per_s:.0f} acknowledged, p99 {first_bad.p(0.99):.0f} ms, "
            f"{first_bad.final_lost} final positions lost)")


# --- the run ------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[Config]:
    """The relay at the main size, then every size with every layer, the layers taking
    turns so that a change in the machine's load falls on both."""
    n, m, s, tick = args.drivers, args.consoles, args.servers, args.tick
    suffix = f" x{s}" if s > 1 else ""
    configs = [] if args.no_relay else [Config("relay (websockets+redis)", "relay", "-", s, tick, n, m)]
    if not args.no_relay and not args.quick:
        # The same relay storing each ping first: how much of the gap is the database write.
        configs.append(Config("relay+pg (one INSERT/ping)", "relay", "+pg", s, tick, n, m))
    for size in sorted({n, *args.sweep}):
        configs += [Config(f"daphne {layer}{suffix}", "daphne", layer, s, tick, size, m) for layer in args.layers]
    return configs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 drivers, 5 consoles, short windows, one layer")
    parser.add_argument("--drivers", type=int, help=f"drivers (default {TARGET_DRIVERS}; quick 200)")
    parser.add_argument("--consoles", type=int, help=f"consoles (default {TARGET_CONSOLES}; quick 5)")
    parser.add_argument("--layers", help="channel layers to measure, comma-separated; the first is the headline "
                                         "(default pubsub,core; quick pubsub)")
    parser.add_argument("--sweep", help="other driver counts to measure, comma-separated (default 250,500,1000; "
                                        "quick none)")
    parser.add_argument("--servers", type=int, default=1, help="server processes per configuration")
    parser.add_argument("--tick", type=float, default=0.1, help="LOCATION_FANOUT_TICK_S for Daphne, and the relay's tick")
    parser.add_argument("--duration", type=float, help="measured steady seconds (default 30; quick 10)")
    parser.add_argument("--idle", type=float, help="seconds all connected and silent, for idle CPU (default 10; quick 3)")
    parser.add_argument("--warmup", type=float, help="steady seconds before measuring (default 5; quick 2.5)")
    parser.add_argument("--saturation", type=float, help="measured saturation seconds (default 10; quick 3)")
    parser.add_argument("--sat-drivers", type=int, default=200, help="drivers pinging back to back in saturation")
    parser.add_argument("--sat-rounds", type=int, help="rounds the saturation window is cut into; the figure is "
                                                        "their median (default 5; quick 3)")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds allowed for final positions to arrive")
    parser.add_argument("--keep-logs", metavar="DIR", help="save each server's output there")
    parser.add_argument("--no-relay", action="store_true", help="skip the baseline (no headline)")
    parser.add_argument("--asgi-app", default="config.asgi:application",
                        help="what daphne serves: measure a variant without editing the project (set PYTHONPATH)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_RT_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_RT_REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)
    q = args.quick
    args.drivers = args.drivers or (200 if q else TARGET_DRIVERS)
    args.consoles = args.consoles or (5 if q else TARGET_CONSOLES)
    args.layers = (args.layers or ("pubsub" if q else "pubsub,core")).split(",")
    if any(layer not in LAYERS for layer in args.layers):
        parser.error(f"--layers takes {', '.join(LAYERS)}")
    args.sweep = [int(v) for v in (args.sweep if args.sweep is not None else ("" if q else "250,500,1000")).split(",")
                  if v.strip()]
    args.duration = args.duration or (10.0 if q else 30.0)
    args.idle = args.idle if args.idle is not None else (2.0 if q else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (2.5 if q else 5.0)
    args.saturation = args.saturation if args.saturation is not None else (3.0 if q else 10.0)
    args.sat_rounds = max(1, args.sat_rounds or (3 if q else 5))
    # A terminated bench still stops its servers and removes its rows (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    need = max([args.drivers, *args.sweep]) + args.consoles + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))

    started = time.perf_counter()
    setup_django(args.database_url)
    os.environ["REDIS_URL"] = args.redis_url
    cleanup()
    _raise_id_sequences()
    run_id = secrets.token_hex(3)
    size = max([args.drivers, *args.sweep])
    fleet = fleet_create(run_id, size, args.consoles)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    import channels_redis
    import daphne
    import websockets

    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}: run {run_id}; daphne {daphne.__version__}, channels-redis "
          f"{channels_redis.__version__}, websockets {websockets.__version__}; fleet of {size} drivers and "
          f"{args.consoles} consoles made in {time.perf_counter() - started:.1f} s; pings every {INTERVAL_S:.0f} s, "
          f"tick {args.tick} s, warm-up {args.warmup:.0f} s, window {args.duration:.0f} s, saturation "
          f"{args.saturation:.0f} s x {args.sat_drivers} drivers in {args.sat_rounds} rounds; {args.servers} server "
          f"process(es)", flush=True)
    outcomes: list[Outcome] = []
    try:
        for cfg in plan(args):
            try:
                outcomes.append(measure(cfg, fleet, args, run_id))
            except Exception as exc:  # one configuration failing must not lose the others
                print(f"  {cfg.label} with {cfg.drivers} drivers FAILED: {exc!r}"[:300], flush=True)
    finally:
        cleanup(run_id, fleet.session_keys)

    relay = next((o for o in outcomes if o.config.kind == "relay" and o.config.layer == "-"), None)
    ours = [o for o in outcomes if o.config.kind == "daphne"]
    main_size = [o for o in ours if o.config.drivers == args.drivers]
    print(f"total run time {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
    print(HEADER)
    for o in outcomes:
        print(row(o))
    print(CPU_HEADER)
    for o in outcomes:
        print(cpu_row(o))
    for layer in args.layers if args.sweep else []:
        print(f"{layer}: {knee([o for o in ours if o.config.layer == layer])}")
    if relay is not None and main_size:
        print(headline(main_size[0], relay))


if __name__ == "__main__":
    main()
