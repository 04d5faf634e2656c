"""Verified Shopify order webhooks posted concurrently, beside a no-op endpoint on the same server.

    .venv/bin/python -m bench.inbound            # 3 rounds of 20 s per endpoint: docs/performance.md
    .venv/bin/python -m bench.inbound --quick    # 2 rounds of 6 s, well inside a minute

Runs against PostgreSQL (default: the database ``lastmile_bench_inbound``, created if
missing; set ``--database-url``), migrating it if needed. The bench starts ``--servers``
``daphne`` processes (default one per core, at most two, as docs/deploy.md runs them) on
free loopback ports and, in interleaved rounds, drives two endpoints with the same number
of concurrent keep-alive connections spread over them:

* ``noop``: ``POST /hooks/noop``, unauthenticated, does nothing: the server's floor for a
  request on the webhook path (the same ASGI front, apps/integrations/front.py).
* ``shopify``: ``POST /hooks/<token>``, the real inbound path: HMAC over the raw body,
  raw message + headers stored and its processing task enqueued (one statement, grouped
  with the requests that arrived meanwhile), 200 after the commit. Every request has its
  own ``X-Shopify-Event-Id``, so each one is stored (no deduplication shortcut).
  Processing is not running: the figure is the acknowledgement a store waits for.

The load generator is an asyncio protocol per connection sending requests built (and
signed) before timing, so it leaves the cores to the server. Each figure is the best
round (requests/s) with its latency percentiles, and the CPU time the servers and the
PostgreSQL backends serving the bench database spent per request (robust to other load
on the machine). At the end the bench checks that every acknowledged request was stored
exactly once, then removes its organization, messages and tasks. The last line printed
is the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlparse

from bench.ingest import ensure_database
from bench.topology import free_port

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lastmile_bench_inbound"
SECRET = "bench-shopify-secret"
SLUG_PREFIX = "bench-inbound-"
TARGET_RATE = 300
TARGET_P99_MS = 200


def server_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LASTMILE_ENV", "LASTMILE_INPROCESS_WORKER", "REDIS_URL")}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false", LOG_LEVEL="WARNING",
               INBOUND_NOOP_ENDPOINT="true",
               # The bench measures capacity: one connection URL far over a partner's rate.
               INBOUND_RATE_PER_S="1000000", INBOUND_BURST="1000000",
               # Database connections that outlive a round, so the CPU meter sees every
               # backend's time (a backend closed mid-round takes its CPU time with it).
               DB_CONN_MAX_AGE="3600")
    return env


def setup_django(database_url: str) -> None:
    ensure_database(database_url)
    os.environ.update(server_env(database_url))
    os.environ.pop("LASTMILE_INPROCESS_WORKER", None)
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


class Daphne:
    """One daphne process on a free loopback port."""

    def __init__(self, database_url: str) -> None:
        self.env = server_env(database_url)
        self.port = 0
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.port = free_port()
        daphne = Path(sys.executable).parent / "daphne"
        self.proc = subprocess.Popen([str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
                                     cwd=BASE_DIR, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")[-2000:]
        self.__exit__()
        raise RuntimeError(f"daphne did not start:\n{output}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.environ.get("BENCH_DEBUG"):
            self.log.seek(0)
            print(self.log.read().decode(errors="replace")[-3000:], file=sys.stderr)
        self.log.close()


@dataclass
class Round:
    name: str
    seconds: float = 0.0
    accepted: int = 0
    failed: int = 0
    sent: int = 0
    acknowledged: list[int] = field(default_factory=list)  # indices of the requests answered 200
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


class _Client(asyncio.Protocol):
    """One keep-alive connection sending the next prepared request as soon as the
    previous answer is complete. A protocol, not a client library: parsing an answer is
    a few byte searches, so the load generator leaves the cores to the server."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buffer = b""
        self.began = 0.0
        self.index = -1
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._next()

    def _next(self) -> None:
        self.index = self.run.take()
        if self.index < 0:
            self.transport.close()  # type: ignore[union-attr]
            return
        request = self.run.requests[self.index]
        self.began = time.perf_counter()
        self.transport.write(request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        if status != 200 and os.environ.get("BENCH_DEBUG") and not self.run.result.failed:
            print(f"    {self.run.result.name}: {self.buffer[:end + 4 + length][:400]!r}", file=sys.stderr)
        self.buffer = self.buffer[end + 4 + length:]
        self.run.done(self.index, status, (time.perf_counter() - self.began) * 1000)
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.buffer or exc is not None:
            self.run.result.failed += 1  # an answer cut short
        if not self.closed.done():
            self.closed.set_result(None)


class _Run:
    def __init__(self, name: str, requests: list[bytes], seconds: float) -> None:
        self.result = Round(name)
        self.requests = requests
        self.cursor = 0
        self.stop_at = time.monotonic() + seconds

    def take(self) -> int:
        """The next request's index, or -1 when the round is over."""
        if self.cursor >= len(self.requests) or time.monotonic() >= self.stop_at:
            return -1
        self.cursor += 1
        return self.cursor - 1

    def done(self, index: int, status: int, latency_ms: float) -> None:
        self.result.latencies_ms.append(latency_ms)
        if status == 200:
            self.result.accepted += 1
            self.result.acknowledged.append(index)
        else:
            self.result.failed += 1


def drive(ports: list[int], requests: list[bytes], clients: int, seconds: float, name: str) -> Round:
    """``clients`` keep-alive connections (spread over ``ports``) send the prepared
    requests, in order, as fast as answers come; ``sent`` counts those taken."""

    async def main() -> Round:
        loop = asyncio.get_running_loop()
        run = _Run(name, requests, seconds)
        began = time.monotonic()
        protocols = []
        for i in range(clients):
            _, protocol = await loop.create_connection(lambda: _Client(run), "127.0.0.1", ports[i % len(ports)])
            protocols.append(protocol)
        await asyncio.gather(*(p.closed for p in protocols))
        run.result.seconds = time.monotonic() - began
        run.result.sent = run.cursor
        return run.result

    return asyncio.run(main())


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def prepared(path: str, count: int, run_id: str) -> list[bytes]:
    """Signed Shopify deliveries, each with its own event id, built before timing."""
    sample = BASE_DIR.parent / "shared" / "data" / "realworld" / "shopify" / "docs_sample_orders_create.json"
    body = sample.read_bytes() if sample.exists() else json.dumps({"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"}).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return [_request(path, body, {"Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature,
                                  "X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": "bench.myshopify.com",
                                  "X-Shopify-Webhook-Id": f"{run_id}-{i}", "X-Shopify-Event-Id": f"{run_id}-{i}"})
            for i in range(count)]


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_backends(name: str) -> list[int]:
    """PostgreSQL's processes serving the bench database (when on this machine)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"postgres: ") and f" {name} ".encode() in command:
                pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU time the servers and the database spend per request: unlike requests/s, it
    hardly moves when other work shares the machine."""

    def __init__(self, servers: list[int], database: str) -> None:
        self.servers, self.database = servers, database

    def __enter__(self) -> Self:
        self.backends = _database_backends(self.database)
        self.before = [_cpu_s(p) for p in self.servers], {p: _cpu_s(p) for p in self.backends}
        return self

    def __exit__(self, *exc: object) -> None:
        servers_before, backends_before = self.before
        self.server_s = sum(_cpu_s(p) for p in self.servers) - sum(servers_before)
        self.database_s = sum(_cpu_s(p) - backends_before.get(p, 0.0) for p in _database_backends(self.database))

    def per_request(self, requests: int) -> str:
        if not requests:
            return ""
        return (f"cpu/req server {1000 * self.server_s / requests:.2f} ms "
                f"db {1000 * self.database_s / requests:.2f} ms")


def load() -> str:
    try:
        return "load " + Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return ""


def machine() -> str:
    from django.db import connection

    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return f"{cpu}, {os.cpu_count()} cores; PostgreSQL {pg.split()[0]}; Python {platform.python_version()}"


def cleanup(run_id: str | None = None) -> None:
    from django_tasks_db.models import DBTaskResult

    from apps.accounts.models import Organization
    from apps.integrations.models import InboundMessage

    orgs = Organization.objects.filter(slug__startswith=SLUG_PREFIX + (run_id or ""))
    ids = list(InboundMessage.objects.filter(org__in=orgs).values_list("pk", flat=True))
    for start in range(0, len(ids), 5000):
        DBTaskResult.objects.filter(task_path="apps.integrations.tasks.process_inbound",
                                    args_kwargs__args__0__in=ids[start:start + 5000]).delete()
    orgs.delete()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 6 s (under a minute)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    # docs/deploy.md runs one Daphne per core behind the load balancer; this machine has 2.
    parser.add_argument("--servers", type=int, default=min(2, os.cpu_count() or 1),
                        help="daphne processes, clients spread over them (default: one per core, at most 2)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (6.0 if args.quick else 20.0)
    rounds = args.rounds or (2 if args.quick else 3)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    setup_django(args.database_url)
    from apps.accounts.services import organization_create
    from apps.integrations.models import InboundMessage
    from apps.integrations.services.connections import connection_create

    run_id = secrets.token_hex(4)
    cleanup()  # a killed earlier run's leftovers
    org = organization_create(name="Bench inbound", slug=f"{SLUG_PREFIX}{run_id}")
    connection = connection_create(org=org, kind="shopify", name="Bench shop", store="bench.myshopify.com",
                                   secret=SECRET)
    count = int(seconds * rounds * 3000)
    requests = prepared(f"/hooks/{connection.token}", count, run_id)
    noop_requests = [_request("/hooks/noop", b"{}", {"Content-Type": "application/json"})] * count
    best: dict[str, Round] = {}
    offset = 0
    acknowledged: list[int] = []
    cpu_text: dict[str, str] = {}
    database = urlparse(args.database_url).path.lstrip("/")
    try:
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(Daphne(args.database_url)) for _ in range(args.servers)]
            ports = [s.port for s in servers]
            # Warm-up: the database connections, the connection cache, the first inserts.
            drive(ports, noop_requests[:50], 2 * len(ports), 2, "warm")
            warm = drive(ports, requests[:100], 2 * len(ports), 2, "warm")
            offset = warm.sent
            acknowledged += warm.acknowledged
            print(f"machine: {machine()}; {len(ports)} daphne process(es); {args.clients} concurrent clients; "
                  f"{rounds} rounds of {seconds:g} s")
            for number in range(1, rounds + 1):
                for name in ("noop", "shopify"):
                    with CpuMeter([s.proc.pid for s in servers], database) as cpu:  # type: ignore[union-attr]
                        if name == "noop":
                            result = drive(ports, noop_requests, args.clients, seconds, name)
                        else:
                            result = drive(ports, requests[offset:], args.clients, seconds, name)
                    cpu_text[name] = cpu.per_request(result.accepted + result.failed)
                    if name == "shopify":
                        acknowledged += [offset + i for i in result.acknowledged]
                        offset += result.sent
                    print(f"  round {number} {name:<8} {result.rate:8.0f} req/s  p50 {result.pct(0.5):6.1f} ms  "
                          f"p99 {result.pct(0.99):6.1f} ms  failed {result.failed}  {cpu_text[name]}  {load()}")
                    if name not in best or result.rate > best[name].rate:
                        best[name] = result
        keys = list(InboundMessage.objects.filter(connection=connection).values_list("dedupe_key", flat=True))
        # Every 200 must be exactly one stored message: each acknowledged event id is
        # stored, none twice, and nothing was stored that was not sent (a request whose
        # answer was cut short may be stored without its 200).
        expected = {f"event:{run_id}-{i}" for i in acknowledged}
        sent = {f"event:{run_id}-{i}" for i in range(offset)}
        check = "ok" if len(keys) == len(set(keys)) and expected <= set(keys) <= sent else "MISMATCH"
        print(f"stored {len(keys)} messages for {len(acknowledged)} acknowledged of {offset} sent ({check})")
    finally:
        cleanup(run_id)
    noop, shop = best["noop"], best["shopify"]
    verdict = "met" if shop.rate >= TARGET_RATE and shop.pct(0.99) < TARGET_P99_MS else "MISSED"
    print(f"inbound: shopify {shop.rate:.0f} req/s p99 {shop.pct(0.99):.1f} ms | noop {noop.rate:.0f} req/s "
          f"p99 {noop.pct(0.99):.1f} ms | {shop.rate / noop.rate:.2f}x noop | target 300/s p99<200ms {verdict}")


if __name__ == "__main__":
    main()
