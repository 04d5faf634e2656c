"""Verified Shopify order webhooks posted concurrently, beside a no-op endpoint on the same server.

    .venv/bin/python -m bench.inbound            # 3 rounds of 20 s per endpoint: docs/performance.md
    .venv/bin/python -m bench.inbound --quick    # 2 rounds of 6 s, well inside a minute

Runs against PostgreSQL (default: the database ``lastmile_bench_inbound``, created if
missing; set ``--database-url``), migrating it if needed. The bench starts one ``daphne``
process on a free loopback port and, in interleaved rounds, drives two endpoints with the same
number of concurrent keep-alive clients:

* ``noop``: ``POST /hooks/noop``, unauthenticated, does nothing: the server's floor.
* ``shopify``: ``POST /hooks/<token>``, the real inbound path: HMAC over the raw body,
  connection lookup, raw message + headers stored and its processing task enqueued in
  one transaction, 200. Every request has its own ``X-Shopify-Event-Id``, so each one
  is stored (no deduplication shortcut). Processing is not running: the figure is the
  acknowledgement a store waits for.

Bodies and signatures are computed before timing. Each figure is the best round
(requests/s) with its latency percentiles. At the end the bench checks that every
accepted request was stored exactly once, then removes its organization, messages and
tasks. The last line printed is the headline.
"""

from __future__ import annotations

import argparse
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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

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
               INBOUND_NOOP_ENDPOINT="true")
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
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        values = sorted(self.latencies_ms)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def drive(ports: list[int], path: str, requests: list[tuple[bytes, dict[str, str]]], clients: int, seconds: float,
          name: str) -> Round:
    """``clients`` keep-alive connections send the prepared requests as fast as answers come."""
    result = Round(name)
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    stop_at = time.monotonic() + seconds
    start = threading.Barrier(clients + 1)

    def client(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        ok = bad = 0
        start.wait()
        while time.monotonic() < stop_at:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            body, headers = requests[index]
            began = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            mine.append((time.perf_counter() - began) * 1000)
            if status == 200:
                ok += 1
            else:
                bad += 1
                if bad == 1 and os.environ.get("BENCH_DEBUG"):
                    print(f"    {name}: HTTP {status} {response.read()[:300] if status else b''}", file=sys.stderr)
        conn.close()
        with lock:
            result.latencies_ms += mine
            result.accepted += ok
            result.failed += bad

    threads = [threading.Thread(target=client, args=(ports[i % len(ports)],)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.monotonic()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - began
    return result


def prepared(count: int, run_id: str) -> list[tuple[bytes, dict[str, str]]]:
    sample = BASE_DIR.parent / "shared" / "data" / "realworld" / "shopify" / "docs_sample_orders_create.json"
    body = sample.read_bytes() if sample.exists() else json.dumps({"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"}).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return [(body, {"Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature,
                    "X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": "bench.myshopify.com",
                    "X-Shopify-Webhook-Id": f"{run_id}-{i}", "X-Shopify-Event-Id": f"{run_id}-{i}"})
            for i in range(count)]


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
    parser.add_argument("--servers", type=int, default=1, help="daphne processes (clients spread over them)")
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
    requests = prepared(int(seconds * rounds * 2000), run_id)
    noop_requests = [(b"{}", {"Content-Type": "application/json"})] * len(requests)
    best: dict[str, Round] = {}
    offset = 0
    try:
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(Daphne(args.database_url))
                       for _ in range(args.servers)]
            ports = [s.port for s in servers]
            # Warm-up: URL conf, the database connections, the first inserts.
            drive(ports, "/hooks/noop", noop_requests[:50], 2 * len(ports), 2, "warm")
            warm = drive(ports, f"/hooks/{connection.token}", requests[:100], 2 * len(ports), 2, "warm")
            offset = warm.accepted + warm.failed
            ok = warm.accepted
            print(f"machine: {machine()}; {len(ports)} daphne process(es); {args.clients} concurrent clients; "
                  f"{rounds} rounds of {seconds:g} s")
            for number in range(1, rounds + 1):
                for name, path in (("noop", "/hooks/noop"), ("shopify", f"/hooks/{connection.token}")):
                    batch = noop_requests if name == "noop" else requests[offset:]
                    result = drive(ports, path, batch, args.clients, seconds, name)
                    if name == "shopify":
                        offset += result.accepted + result.failed
                        ok += result.accepted
                    print(f"  round {number} {name:<8} {result.rate:8.0f} req/s  p50 {result.pct(0.5):6.1f} ms  "
                          f"p99 {result.pct(0.99):6.1f} ms  failed {result.failed}")
                    if name not in best or result.rate > best[name].rate:
                        best[name] = result
        stored = InboundMessage.objects.filter(connection=connection).count()
        distinct = InboundMessage.objects.filter(connection=connection).values("dedupe_key").distinct().count()
        # Every 200 must be one stored message (a timed-out request may be stored without its 200).
        check = "ok" if stored == distinct and ok <= stored <= offset else "MISMATCH"
        print(f"stored {stored} messages for {ok} acknowledged of {offset} sent ({check})")
    finally:
        cleanup(run_id)
    noop, shop = best["noop"], best["shopify"]
    verdict = "met" if shop.rate >= TARGET_RATE and shop.pct(0.99) < TARGET_P99_MS else "MISSED"
    print(f"inbound: shopify {shop.rate:.0f} req/s p99 {shop.pct(0.99):.1f} ms | noop {noop.rate:.0f} req/s "
          f"p99 {noop.pct(0.99):.1f} ms | {shop.rate / noop.rate:.2f}x noop | target 300/s p99<200ms {verdict}")


if __name__ == "__main__":
    main()
