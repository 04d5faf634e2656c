"""Soak with churn (reliability plan LC-02): the production topology runs for a long
time while phones and consoles drop off and come back, and nothing leaks or drifts.

    .venv/bin/python -m bench.soak --quick         # 2 x 25 s, 150 drivers, 6 consoles, 60 %/min churn
    .venv/bin/python -m bench.soak --minutes 30    # the recorded run: see docs/performance.md
    .venv/bin/python -m bench.soak --minutes 240   # the plan's four hours

Needs PostgreSQL and Redis. Starts ``bench/topology.py`` (2 Daphne processes behind a
round-robin TCP balancer, 1 worker) on its own database (``lastmile_soakbench``) and
Redis database (11), makes an organization of N drivers and M dispatchers, and runs
two phases of equal length back to back with the same traffic:

1. **control**: nobody disconnects;
2. **churn**: every second, ``churn``/60 of the clients lose their connection without a
   close (the TCP socket is aborted, as a phone that loses its tunnel or a backgrounded
   PWA) and come back 1-5 s later with ``hello`` and the last sequence they applied.

Traffic in both: every driver pings every 5 s over its socket; a phone that is offline
keeps its pings and sends the backlog as one ``pings`` batch when it is back, and
re-sends any ping not yet acknowledged when its socket died (the server drops
duplicates by device time). The organization's event log grows by two new orders a
second, created through the order services in this process and published through
Redis like any other change; consoles apply events by ``seq`` and ask for ``resync``
when they see a hole.

Sampled every 5 s: each process's RSS, Redis keys and memory. Side by side per phase:
RSS drift (MB per hour, least squares), Redis keys and memory at the start and end.
At the end, after one heartbeat of quiet, every console must equal the database (last
sequence = the log head, every driver's position = its stored latest fix) and every
ping sent must be stored exactly once. The last line printed is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import statistics
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from bench.ingest import machine, setup_django
from bench.load_processes import Drain
from bench.realtime import (
    BERLIN,
    CONNECT_CONCURRENCY,
    _iso,
    _raise_id_sequences,
    _ts,
    cleanup,
    fleet_create,
    rss_kb,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lastmile_soakbench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
PING_INTERVAL_S = 5.0
ORDERS_PER_S = 2.0
SAMPLE_S = 5.0


class Phone:
    """A driver's or a dispatcher's client: one socket at a time, state kept across them."""

    def __init__(self, kind: str, index: int, path: str, cookie: str, driver_id: int | None = None) -> None:
        self.kind, self.index, self.path, self.cookie, self.driver_id = kind, index, path, cookie, driver_id
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.online = asyncio.Event()
        self.last_seq = 0
        self.connects = self.snapshots = self.replays = self.gaps = self.resyncs = self.refused = 0
        self.positions: dict[int, float] = {}  # console: driver id -> newest device time seen
        # Driver: pings not yet acknowledged (each message, in order) and kept while offline.
        self.unacked: deque[list[dict[str, Any]]] = deque()
        self.backlog: list[dict[str, Any]] = []
        self.sent_at: set[str] = set()
        self.lat = self.lng = 0.0

    async def connect(self, base: str, gate: asyncio.Semaphore) -> None:
        import websockets

        delay = 0.5
        while True:
            try:
                async with gate:
                    origin = base.replace("ws", "http", 1)
                    ws = await websockets.connect(f"{base}{self.path}", open_timeout=30, ping_interval=None,
                                                  max_size=1 << 26, max_queue=None,
                                                  additional_headers={"Cookie": self.cookie, "Origin": origin})
                    welcome = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    assert welcome["type"] == "welcome", welcome
                    await ws.send(json.dumps({"type": "hello", "last_seq": self.last_seq}))
                break
            except (OSError, TimeoutError, AssertionError, websockets.InvalidHandshake, websockets.ConnectionClosed):
                self.refused += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        self.ws, self.connects = ws, self.connects + 1
        self.reader = asyncio.create_task(self._read(ws))
        self.online.set()
        if self.kind == "driver":
            # Whatever the last socket did not confirm, then what piled up offline: once
            # each in effect, since the server drops a driver's duplicate device times.
            resend = [p for batch in self.unacked for p in batch] + self.backlog
            self.unacked.clear()
            self.backlog = []
            if resend:
                await self._send(resend)

    def drop(self) -> None:
        """Lose the connection without a close frame, as a phone losing its network."""
        self.online.clear()
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.transport.abort()
        if self.kind == "driver":
            self.backlog = [p for batch in self.unacked for p in batch] + self.backlog
            self.unacked.clear()

    async def ping(self) -> None:
        self.lat += 0.00005
        at = _iso(time.time())
        self.sent_at.add(at)
        fix = {"lat": round(self.lat, 6), "lng": self.lng, "accuracy_m": 8, "speed_mps": 1.1, "heading": 0, "at": at}
        if not self.online.is_set():
            self.backlog.append(fix)
            return
        await self._send([fix])

    async def _send(self, fixes: list[dict[str, Any]]) -> None:
        self.unacked.append(fixes)
        message = {"type": "ping", **fixes[0]} if len(fixes) == 1 else {"type": "pings", "pings": fixes}
        with contextlib.suppress(Exception):  # a dead socket: the fixes stay unacknowledged and go again
            await self.ws.send(json.dumps(message))

    async def _read(self, ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for frame in ws:
                await self.on_message(json.loads(frame))
        if self.online.is_set():  # closed by the server, not by us: come back like the app does
            self.drop()

    async def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "pings.ack" and self.unacked:
            self.unacked.popleft()
        elif kind == "snapshot":
            self.snapshots += 1
            self.last_seq = max(self.last_seq, message["seq"])
            self._positions(message.get("data", {}).get("positions") or [])
        elif kind == "positions":
            self._positions(message["positions"])
        elif kind == "events":
            self.replays += bool(message.get("replayed"))
            for event in message["events"]:
                if event["seq"] <= self.last_seq:
                    continue  # a replay overlapping a live push
                if self.kind == "console" and event["seq"] > self.last_seq + 1:
                    # A hole in the organization's log: ask for it, as frontend/common/live.js does.
                    self.gaps += 1
                    self.resyncs += 1
                    await self.ws.send(json.dumps({"type": "resync", "last_seq": self.last_seq}))
                    return
                self.last_seq = event["seq"]
        elif kind == "heartbeat" and self.kind == "console" and message.get("seq", 0) > self.last_seq:
            pass  # the server fills the gap itself on its beat; counted when the events arrive

    def _positions(self, positions: list[dict[str, Any]]) -> None:
        for p in positions:
            at = _ts(p["at"])
            if at > self.positions.get(p["driver_id"], 0.0):
                self.positions[p["driver_id"]] = at


@dataclass
class Sample:
    at: float
    rss_kb: dict[str, int]
    redis_keys: int
    redis_bytes: int


@dataclass
class Phase:
    name: str
    churn_per_min: float
    samples: list[Sample] = field(default_factory=list)
    drops: int = 0

    def drift_mb_per_h(self, process: str) -> float:
        xs = [s.at for s in self.samples]
        ys = [s.rss_kb[process] / 1024 for s in self.samples]
        if len(xs) < 3:
            return float("nan")
        return statistics.linear_regression(xs, ys).slope * 3600


def sample(processes: dict[str, int], redis_url: str) -> Sample:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys, memory = client.dbsize(), int(client.info("memory")["used_memory"])
    finally:
        client.close()
    return Sample(time.monotonic(), {name: rss_kb(pid) for name, pid in processes.items()}, keys, memory)


def order_writer(org_id: int, stop: threading.Event, rate: float, created: list[int]) -> None:
    """Two new orders a second through the ordinary services: events the consoles must see."""
    from django.db import close_old_connections

    from apps.accounts.actor import system_actor
    from apps.accounts.models import Organization
    from apps.dispatch.inputs import OrderIn
    from apps.dispatch.services.orders import order_bulk_create

    actor = system_actor(Organization.objects.get(pk=org_id))
    n = 0
    while not stop.wait(1 / rate):
        n += 1
        order_bulk_create(actor=actor, orders=[OrderIn(
            source="soak", external_id=f"SOAK-{n}", customer_name="Soak Test", address_line1=f"Teststraße {n}",
            city="Berlin", postal_code="10115", country="DE", lat=52.52, lng=13.40)])
        created.append(n)
    close_old_connections()


async def run_phase(phase: Phase, phones: list[Phone], base: str, seconds: float, processes: dict[str, int],
                    redis_url: str, gate: asyncio.Semaphore, rng: random.Random) -> None:
    drivers = [p for p in phones if p.kind == "driver"]
    end = time.monotonic() + seconds
    next_sample = time.monotonic()
    pending: set[asyncio.Task[None]] = set()

    async def comeback(phone: Phone) -> None:
        await asyncio.sleep(rng.uniform(1, 5))
        await phone.connect(base, gate)

    async def pings() -> None:
        offsets = {d.index: rng.uniform(0, PING_INTERVAL_S) for d in drivers}
        started = time.monotonic()
        beat = 0
        while time.monotonic() < end:
            for d in drivers:
                due = started + beat * PING_INTERVAL_S + offsets[d.index]
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                if time.monotonic() >= end:
                    return
                await d.ping()
            beat += 1

    pinger = asyncio.create_task(pings())
    while time.monotonic() < end:
        if time.monotonic() >= next_sample:
            phase.samples.append(await asyncio.to_thread(sample, processes, redis_url))
            next_sample += SAMPLE_S
        if phase.churn_per_min:
            expected = len(phones) * phase.churn_per_min / 100 / 60
            count = int(expected) + (rng.random() < expected - int(expected))
            for phone in rng.sample([p for p in phones if p.online.is_set()], k=count):
                phone.drop()
                phase.drops += 1
                task = asyncio.create_task(comeback(phone))
                pending.add(task)
                task.add_done_callback(pending.discard)
        await asyncio.sleep(1)
    await pinger
    if pending:
        await asyncio.gather(*pending)
    phase.samples.append(await asyncio.to_thread(sample, processes, redis_url))


def verify(org_id: int, phones: list[Phone]) -> dict[str, Any]:
    from django.db.models import Max

    from apps.events.models import Event
    from apps.tracking.models import DriverPosition, LocationPing

    head = Event.objects.filter(org_id=org_id).aggregate(m=Max("sequence"))["m"] or 0
    stored = {d: p.timestamp() for d, p in DriverPosition.objects.filter(org_id=org_id).values_list("driver_id", "device_time")
              if p is not None}
    consoles = [p for p in phones if p.kind == "console"]
    equal = [c for c in consoles if c.last_seq == head and all(
        abs(c.positions.get(d, 0) - at) < 1e-3 for d, at in stored.items())]
    from django.db.models import Max as _Max

    newest = dict(LocationPing.objects.filter(org_id=org_id, status="shown").values("driver_id")
                  .annotate(m=_Max("device_time")).values_list("driver_id", "m"))
    off = [(c.index, d, round(c.positions.get(d, 0) - at, 3), round(newest[d].timestamp() - at, 3) if d in newest else None)
           for c in consoles for d, at in stored.items() if abs(c.positions.get(d, 0) - at) >= 1e-3]
    sent = sum(len(p.sent_at) for p in phones if p.kind == "driver")
    pings = LocationPing.objects.filter(org_id=org_id).count()
    return {"head": head, "consoles": len(consoles), "consoles_equal": len(equal), "pings_sent": sent,
            "pings_stored": pings, "behind": [(c.index, c.last_seq) for c in consoles if c.last_seq != head][:5],
            "positions_off": len(off), "positions_off_sample": off[:6]}


async def soak(args: argparse.Namespace, fleet: Any, base: str, processes: dict[str, int],
               writer_stop: threading.Event) -> tuple[list[Phase], list[Phone]]:
    rng = random.Random(7)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    phones = [Phone("driver", i, "/ws/driver/", cookie, driver_id)
              for i, (cookie, driver_id) in enumerate(zip(fleet.driver_cookies, fleet.driver_ids, strict=True))]
    for p in phones:
        p.lat = rng.uniform(BERLIN[0], BERLIN[1])
        p.lng = round(rng.uniform(BERLIN[2], BERLIN[3]), 6)
    phones += [Phone("console", i, "/ws/console/", cookie) for i, cookie in enumerate(fleet.console_cookies)]
    await asyncio.gather(*(p.connect(base, gate) for p in phones))
    print(f"connected {len(phones)} clients", flush=True)
    phases = [Phase("control", 0.0), Phase("churn", args.churn)]
    for phase in phases:
        await run_phase(phase, phones, base, args.phase_s, processes, args.redis_url, gate, rng)
        print(f"phase {phase.name}: {phase.drops} connections dropped", flush=True)
    # Quiet: no new orders; one heartbeat (and a tick) lets every server-side gap
    # check and every backlog land.
    writer_stop.set()
    await asyncio.sleep(args.settle)
    return phases, phones


def report(phases: list[Phase], phones: list[Phone], result: dict[str, Any], args: argparse.Namespace,
           processes: list[str]) -> list[str]:
    lines = [f"{'phase':<8} {'drops':>6} " + " ".join(f"{name + ' MB/h':>15}" for name in processes)
             + f" {'redis keys':>12} {'redis MB':>14}"]
    for ph in phases:
        first, last = ph.samples[0], ph.samples[-1]
        lines.append(f"{ph.name:<8} {ph.drops:>6} " + " ".join(f"{ph.drift_mb_per_h(n):>+15.1f}" for n in processes)
                     + f" {first.redis_keys:>5} -> {last.redis_keys:<4} "
                     f"{first.redis_bytes / 2**20:>6.1f} -> {last.redis_bytes / 2**20:<5.1f}")
    consoles = [p for p in phones if p.kind == "console"]
    drivers = [p for p in phones if p.kind == "driver"]
    reconnects = sum(p.connects - 1 for p in phones)
    lines.append(f"reconnects {reconnects} (consoles {sum(c.connects - 1 for c in consoles)}: "
                 f"{sum(c.replays for c in consoles)} replays, {sum(c.snapshots - 1 for c in consoles)} snapshots; "
                 f"drivers {sum(d.connects - 1 for d in drivers)}); holes seen by consoles {sum(c.gaps for c in consoles)}, "
                 f"all filled: {'yes' if result['consoles_equal'] == result['consoles'] else 'NO'}")
    lines.append(f"handshakes refused or failed and retried: {sum(p.refused for p in phones)}")
    lines.append(f"log head {result['head']}; consoles equal to the database {result['consoles_equal']}/{result['consoles']}"
                 + (f" (behind: {result['behind']})" if result["behind"] else "")
                 + (f" (positions off: {result['positions_off']}, e.g. console, driver, seconds: "
                    f"{result['positions_off_sample']})" if result["positions_off"] else "")
                 + f"; pings stored {result['pings_stored']} of {result['pings_sent']} sent")
    asgi = [n for n in processes if n.startswith("asgi")]
    churn, control = phases[1], phases[0]
    ok = result["consoles_equal"] == result["consoles"] and result["pings_stored"] == result["pings_sent"]
    lines.append(
        f"soak: 2 x {args.phase_s / 60:.1f} min, {args.drivers} drivers + {args.consoles} consoles, churn "
        f"{args.churn:g}%/min ({reconnects} reconnects): consoles equal DB {result['consoles_equal']}/{result['consoles']}, "
        f"pings stored once {result['pings_stored']}/{result['pings_sent']}, ASGI RSS drift "
        f"churn {statistics.fmean(churn.drift_mb_per_h(n) for n in asgi):+.1f} vs control "
        f"{statistics.fmean(control.drift_mb_per_h(n) for n in asgi):+.1f} MB/h, Redis keys "
        f"{churn.samples[0].redis_keys}->{churn.samples[-1].redis_keys} "
        f"(control {control.samples[0].redis_keys}->{control.samples[-1].redis_keys}): {'ok' if ok else 'FAILED'}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 x 25 s, 150 drivers, 6 consoles, 60 %%/min churn")
    parser.add_argument("--minutes", type=float, default=30, help="both phases together (default 30)")
    parser.add_argument("--drivers", type=int, default=500)
    parser.add_argument("--consoles", type=int, default=20)
    parser.add_argument("--churn", type=float, default=10, help="percent of clients dropped per minute (default 10)")
    parser.add_argument("--settle", type=float, default=15, help="quiet seconds before the checks (default 15)")
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("SOAK_REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.drivers, args.consoles, args.churn = 50 / 60, 150, 6, 60
    args.phase_s = args.minutes * 60 / 2

    os.environ["REDIS_URL"] = args.redis_url
    # Pub/Sub channels are shared by every Redis database and other benches number their
    # organizations from the same 10^9: a prefix of our own keeps their pushes out.
    prefix = f"soak-{secrets.token_hex(3)}"
    os.environ["CHANNEL_LAYER_PREFIX"] = prefix
    setup_django(args.database_url)
    import redis

    from bench.topology import topology

    redis.Redis.from_url(args.redis_url).flushdb()
    cleanup()
    _raise_id_sequences()  # Pub/Sub channels are shared by every Redis database: keep our group names apart
    run_id = secrets.token_hex(3)
    fleet = fleet_create(run_id, args.drivers, args.consoles)
    print(machine(), flush=True)
    print(f"soak: {args.drivers} drivers, {args.consoles} consoles, 2 phases of {args.phase_s:.0f} s, churn "
          f"{args.churn:g}%/min, topology 2 Daphne + 1 worker", flush=True)
    stop = threading.Event()
    created: list[int] = []
    try:
        with topology(args.database_url, args.redis_url, asgi=2, workers=1,
                      extra_env={"CHANNEL_LAYER_PREFIX": prefix}) as running:
            processes = {p.name: p.popen.pid for p in running.servers + running.worker_processes}
            # Read each process's output as it comes: an unread pipe fills within minutes
            # of reconnect log lines and then blocks the process.
            drains = [Drain(p.name, p.popen.stdout) for p in running.servers + running.worker_processes]
            base = running.url.replace("http", "ws", 1)
            writer = threading.Thread(target=order_writer, args=(fleet.org_id, stop, ORDERS_PER_S, created), daemon=True)
            writer.start()
            try:
                phases, phones = asyncio.run(soak(args, fleet, base, processes, stop))
            finally:
                stop.set()
                writer.join(10)
            result = verify(fleet.org_id, phones)
        problems = sum((d.problems for d in drains), Counter())
        for problem, count in problems.most_common(5):
            print(f"server log: {count} x {problem}", flush=True)
        for line in report(phases, phones, result, args, list(processes)):
            print(line, flush=True)
    finally:
        cleanup(run_id, fleet.session_keys)


if __name__ == "__main__":
    main()
