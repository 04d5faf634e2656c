"""Bulk order ingest through the API, beside a raw ``bulk_create`` of the same rows.

    .venv/bin/python -m bench.ingest            # 10,000 orders: the figures in docs/performance.md
    .venv/bin/python -m bench.ingest --quick    # 2,000 orders, well inside a minute

Runs against PostgreSQL only, in its own database (default ``lastmile_bench``,
created and migrated if missing; ``--database-url`` points elsewhere). Every
measurement ingests the same generated orders into a fresh organization:

* ``bulk_create``: the baseline. Order, OrderItem and Event rows (one
  ``order.created`` per order, as the API writes) built straight from the payload
  dicts and written with ``Model.objects.bulk_create``, 1,000 orders per
  transaction. Building the model instances is timed (a row needs them, and its
  content hash); validation, the idempotency lookup, HTTP and JSON are not there.
* ``api_http``: POST /api/v1/orders/bulk/ in batches of 1,000 to a real
  ``daphne`` process on this machine, from one client and then two concurrent
  clients, over keep-alive connections. Request bodies are encoded beforehand,
  so the figure is the server's, not the client's.
* ``api_inprocess``: the same requests through DRF's test ``APIClient`` in this
  process: the framework and service cost without a server or a socket.

The methods run in interleaved rounds (three by default) and each figure is the
best round. After the first API round the bench checks what the API wrote
(orders, items, events) and that re-posting a batch is a harmless retry; at the
end it removes its organizations. The last line printed is the headline.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lastmile_bench"
BULK_PATH = "/api/v1/orders/bulk/"
SLUG_PREFIX = "bench-ingest-"
TARGET_RATE = 1000
TARGET_RATIO = 0.5


# --- the database -------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the bench database if it does not exist yet (connecting to ``postgres``)."""
    import psycopg
    from psycopg import sql

    parts = urlparse(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit(f"the benchmarks measure PostgreSQL; --database-url is {parts.scheme}://")
    name = parts.path.lstrip("/")
    with psycopg.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 5432, user=parts.username or "postgres",
        password=parts.password, dbname="postgres", autocommit=True,
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_env(database_url: str) -> dict[str, str]:
    """The environment shared by this process and the daphne it starts: the bench
    database, development mode, and DEBUG off so queries are not logged."""
    env = {k: v for k, v in os.environ.items() if k not in ("LASTMILE_ENV", "LASTMILE_INPROCESS_WORKER")}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false")
    return env


def setup_django(database_url: str) -> None:
    ensure_database(database_url)
    env = server_env(database_url)
    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.environ.update(env)
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


# --- the orders ---------------------------------------------------------------

STREETS = [
    "Torstraße", "Kastanienallee", "Schönhauser Allee", "Oranienstraße", "Bergmannstraße", "Karl-Marx-Allee",
    "Sonnenallee", "Kantstraße", "Danziger Straße", "Boxhagener Straße", "Hermannstraße", "Müllerstraße",
    "Friedrichstraße", "Greifswalder Straße", "Wilmersdorfer Straße", "Schloßstraße", "Frankfurter Allee",
    "Prenzlauer Allee", "Skalitzer Straße", "Potsdamer Straße",
]
FIRST = ["Anna", "Ben", "Clara", "Deniz", "Elif", "Finn", "Greta", "Hannes", "Ida", "Jonas", "Lea", "Mehmet", "Noah", "Sofia"]
LAST = ["Müller", "Schmidt", "Yılmaz", "Weber", "Fischer", "Nowak", "Becker", "Wagner", "Hoffmann", "Kaya", "Schulz"]
GOODS = [
    ("BOOK", "Paperback", 0.4, 1.2), ("SHOE", "Trainers", 1.1, 9.0), ("TEA", "Tea, 6 tins", 1.8, 4.5),
    ("LAMP", "Desk lamp", 2.6, 14.0), ("TOY", "Wooden train", 1.3, 6.0), ("WINE", "Wine, 3 bottles", 4.4, 5.5),
    ("PLANT", "Potted fern", 3.2, 22.0), ("COAT", "Winter coat", 1.6, 12.0),
]
INSTRUCTIONS = ["", "", "", "Ring twice", "Leave with neighbour at no. 3", "Back courtyard, 2nd floor", "Call on arrival"]


def make_orders(count: int, *, run_id: str, seed: int = 20261121) -> list[dict[str, Any]]:
    """Realistic Berlin orders as API payloads. The content is the same for every run
    (seeded); the external ids carry the run id so a rerun never hits idempotency."""
    rng = random.Random(seed)
    day = datetime.fromisoformat("2026-11-21T00:00:00+01:00")
    orders = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        start = day + timedelta(hours=rng.randrange(8, 18))
        items = []
        for _ in range(rng.randint(1, 3)):
            code, description, weight, volume = rng.choice(GOODS)
            items.append({
                "sku": f"{code}-{rng.randrange(1000, 9999)}", "description": description,
                "quantity": rng.choice((1, 1, 1, 2, 3)), "weight_kg": weight, "volume_l": volume,
            })
        orders.append({
            "source": "bench",
            "external_id": f"{run_id}-{i:06d}",
            "reference": f"BER-{rng.randrange(100000, 999999)}",
            "customer_name": f"{first} {last}",
            "customer_phone": f"+4930{rng.randrange(1000000, 9999999)}",
            "customer_email": f"{first}.{last}@example.org".lower(),
            "address_line1": f"{rng.choice(STREETS)} {rng.randrange(1, 200)}",
            "address_line2": rng.choice(["", "", "", "Hinterhaus", "3. OG"]),
            "city": "Berlin",
            "postal_code": str(rng.randrange(10115, 14200)),
            "country": "DE",
            "lat": round(rng.uniform(52.40, 52.62), 6),
            "lng": round(rng.uniform(13.15, 13.70), 6),
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=rng.choice((2, 3, 4)))).isoformat(),
            "service_time_s": rng.choice((120, 180, 240, 300)),
            "instructions": rng.choice(INSTRUCTIONS),
            "priority": rng.choice((1, 1, 1, 1, 0, 2)),
            "pod_requirements": rng.choice([[], ["photo"], ["signature"], ["photo", "recipient_name"]]),
            "custom_fields": {"shop": f"berlin-{rng.randrange(1, 6)}"},
            "items": items,
        })
    return orders


def batched(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


# --- measurements -------------------------------------------------------------


@dataclass
class Result:
    """One method's rounds. The figure is the best round, as timeit reports: other
    processes on a 2-core machine only ever add time, and the median of three still
    moved by a third between runs while the test suite ran alongside."""

    method: str
    orders: int
    rounds: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return min(self.rounds)

    @property
    def rate(self) -> float:
        return self.orders / self.seconds


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: with ten batches p95 is the slowest one."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bench_org(run_id: str, label: str) -> tuple[Any, str]:
    from apps.accounts.services import api_client_create, organization_create

    org = organization_create(name=f"Bench {run_id} {label}", slug=f"{SLUG_PREFIX}{run_id}-{label}")
    _, key = api_client_create(org=org, name="bench ingest", scopes=["orders:write", "orders:read"])
    return org, key


def _baseline_rows(org: Any, payloads: list[dict[str, Any]]) -> tuple[list[Any], list[list[Any]]]:
    from apps.dispatch.models import Order, OrderItem

    orders, items = [], []
    for p in payloads:
        fields = {k: v for k, v in p.items() if k != "items"}
        fields["window_start"] = datetime.fromisoformat(p["window_start"])
        fields["window_end"] = datetime.fromisoformat(p["window_end"])
        rows = [OrderItem(**{**i, "weight_kg": Decimal(str(i["weight_kg"])), "volume_l": Decimal(str(i["volume_l"]))})
                for i in p["items"]]
        orders.append(Order(
            org=org, geocode_confidence="exact",
            content_hash=hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest(),
            total_weight_kg=sum(r.weight_kg * r.quantity for r in rows),
            total_volume_l=sum(r.volume_l * r.quantity for r in rows),
            parcel_count=sum(r.quantity for r in rows),
            **fields,
        ))
        items.append(rows)
    return orders, items


def measure_bulk_create(org: Any, payloads: list[dict[str, Any]], batch: int, into: Result) -> None:
    """The floor: the same rows with no API in front. Sequence numbers are assigned
    directly, which is safe only because nothing else writes to this organization."""
    from django.db import transaction
    from django.utils import timezone

    from apps.dispatch.models import Order, OrderItem
    from apps.events import types as ev
    from apps.events.models import Event

    sequence = 0
    started = time.perf_counter()
    for chunk in batched(payloads, batch):
        with transaction.atomic():
            orders, items = _baseline_rows(org, chunk)
            Order.objects.bulk_create(orders)
            for order, rows in zip(orders, items, strict=True):
                for row in rows:
                    row.order_id = order.pk
            OrderItem.objects.bulk_create([row for rows in items for row in rows])
            now = timezone.now()
            Event.objects.bulk_create([
                Event(org=org, sequence=sequence + i + 1, type=ev.ORDER_CREATED, subject_type="order",
                      subject_id=str(o.pk), actor="bench", created_at=now,
                      payload={"order_id": o.pk, "source": o.source, "external_id": o.external_id,
                               "reference": o.reference, "state": o.state, "outcome": o.outcome})
                for i, o in enumerate(orders)
            ])
            sequence += len(orders)
    into.rounds.append(time.perf_counter() - started)


def _check_created(status: int, body: bytes, expected: int) -> None:
    if status != 201:
        raise RuntimeError(f"bulk POST answered {status}: {body[:500]!r}")
    created = json.loads(body)["created"]
    if created != expected:
        raise RuntimeError(f"bulk POST created {created} orders, expected {expected}")


class Daphne:
    """A daphne process serving the project on a free local port, for the lifetime of a ``with``."""

    def __init__(self, database_url: str) -> None:
        self.env = server_env(database_url)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__, with the process
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        daphne = Path(sys.executable).parent / "daphne"
        self.proc = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=BASE_DIR, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status, _ = self.request("GET", "/healthz")
                if status == 200:
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
        self.log.close()

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None, key: str = "",
                conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        own = conn is None
        conn = conn or self.connect()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            if own:
                conn.close()


def measure_http(server: Daphne, key: str, bodies: list[bytes], sizes: list[int], clients: int, into: Result) -> None:
    """POST every batch, ``clients`` connections in parallel, each taking the next batch."""
    # Warm the worker (URL conf, DRF, the database connection) outside the timing.
    server.request("GET", "/api/v1/orders/?limit=1", key=key)
    pending = list(range(len(bodies)))
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        conn = server.connect()
        try:
            while True:
                with lock:
                    if not pending or errors:
                        return
                    index = pending.pop(0)
                sent = time.perf_counter()
                status, body = server.request("POST", BULK_PATH, bodies[index], key, conn)
                elapsed = time.perf_counter() - sent
                _check_created(status, body, sizes[index])
                with lock:
                    latencies.append(elapsed)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    into.rounds.append(seconds)
    into.latencies.extend(latencies)


def measure_inprocess(key: str, bodies: list[bytes], sizes: list[int], into: Result) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/api/v1/orders/?limit=1")
    started = time.perf_counter()
    for body, size in zip(bodies, sizes, strict=True):
        sent = time.perf_counter()
        response = client.post(BULK_PATH, data=body, content_type="application/json")
        into.latencies.append(time.perf_counter() - sent)
        _check_created(response.status_code, response.content, size)
    into.rounds.append(time.perf_counter() - started)


def verify(server: Daphne, org: Any, key: str, payloads: list[dict[str, Any]], first_body: bytes) -> str:
    """What the API wrote is complete, and re-posting a batch is a harmless retry."""
    from apps.dispatch.models import Order, OrderItem
    from apps.events import types as ev
    from apps.events.models import Event

    n = len(payloads)
    orders = Order.objects.filter(org=org).count()
    items = OrderItem.objects.filter(order__org=org).count()
    events = Event.objects.filter(org=org, type=ev.ORDER_CREATED).count()
    expected_items = sum(len(p["items"]) for p in payloads)
    status, body = server.request("POST", BULK_PATH, first_body, key)
    reply = json.loads(body)
    batch = len(json.loads(first_body)["orders"])
    problems = []
    if orders != n:
        problems.append(f"{orders} orders, expected {n}")
    if items != expected_items:
        problems.append(f"{items} items, expected {expected_items}")
    if events != n:
        problems.append(f"{events} order.created events, expected {n}")
    if status != 200 or reply.get("existing") != batch or reply.get("created") != 0:
        problems.append(f"re-post answered {status} with created={reply.get('created')}, existing={reply.get('existing')}")
    if problems:
        raise RuntimeError("verification failed: " + "; ".join(problems))
    return (f"verified api_http: {orders} orders, {items} items, {events} order.created events; "
            f"re-posting batch 1 -> {status}, created=0, existing={batch}")


def cleanup(run_id: str | None = None) -> None:
    """Remove this run's organizations (or, without a run id, any left by a crashed run)."""
    from django.db import connection, transaction

    from apps.accounts.models import Organization
    from apps.dispatch.models import Order, OrderItem
    from apps.events.models import Event

    orgs = Organization.objects.filter(slug__startswith=f"{SLUG_PREFIX}{run_id or ''}")
    org_ids = list(orgs.values_list("pk", flat=True))
    if not org_ids:
        return
    with transaction.atomic():
        Event.objects.filter(org_id__in=org_ids).delete()
        OrderItem.objects.filter(order__org_id__in=org_ids).delete()
        # One statement: the ORM's cascade would load every order to look for stops
        # (the bench makes none), about a minute for a full run's 120,000 orders.
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Order._meta.db_table} WHERE org_id = ANY(%s)", [org_ids])
        orgs.delete()


# --- the run ------------------------------------------------------------------


def machine() -> str:
    import django
    from django.db import connection

    cpu = platform.processor() or platform.machine()
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
    return (f"{cpu}, {os.cpu_count()} cores; PostgreSQL {pg.split()[0]}; Python {platform.python_version()}; "
            f"Django {django.get_version()}")


def report(results: list[Result], baseline: Result, headline: Result) -> list[str]:
    lines = [(f"{'method':<28}{'orders':>8}{'seconds':>9}{'orders/s':>10}{'vs bulk_create':>16}"
              f"{'batch p50/p95 ms':>19}   orders/s per round")]
    for r in results:
        spread = (f"{percentile(r.latencies, 0.5) * 1000:.0f} / {percentile(r.latencies, 0.95) * 1000:.0f}"
                  if r.latencies else "-")
        per_round = " ".join(f"{r.orders / s:.0f}" for s in r.rounds)
        lines.append(f"{r.method:<28}{r.orders:>8}{r.seconds:>9.2f}{r.rate:>10.0f}"
                     f"{r.rate / baseline.rate:>16.2f}{spread:>19}   {per_round}")
    ratio = headline.rate / baseline.rate
    verdict = "met" if headline.rate >= TARGET_RATE and ratio >= TARGET_RATIO else "MISSED"
    lines.append(f"ingest: api_http={headline.rate:.0f} orders/s, bulk_create={baseline.rate:.0f} orders/s, "
                 f"ratio={ratio:.2f} (target >={TARGET_RATE} and >={TARGET_RATIO}: {verdict})")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 orders instead of 10,000")
    parser.add_argument("--orders", type=int, help="how many orders per measurement (overrides --quick)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement, interleaved; the best counts")
    parser.add_argument("--batch", type=int, default=1000, help="orders per request and per bulk_create transaction")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args(argv)
    count = args.orders or (2000 if args.quick else 10_000)
    # A terminated bench still stops its daphne and removes its rows (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.perf_counter()
    setup_django(args.database_url)
    cleanup()
    run_id = secrets.token_hex(3)
    payloads = make_orders(count, run_id=run_id)
    chunks = batched(payloads, args.batch)
    bodies = [json.dumps({"orders": chunk}).encode() for chunk in chunks]
    sizes = [len(chunk) for chunk in chunks]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}: {count} orders ({sum(len(p['items']) for p in payloads)} items) "
          f"per measurement, batches of {args.batch} ({sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB per "
          f"request), {args.rounds} interleaved rounds, run {run_id}")

    baseline = Result("bulk_create (baseline)", count)
    http1 = Result("api_http (1 client)", count)
    http2 = Result("api_http (2 clients)", count)
    inprocess = Result("api_inprocess (APIClient)", count)
    try:
        with Daphne(args.database_url) as server:
            for r in range(args.rounds):
                org, _ = bench_org(run_id, f"{r}-bulk")
                measure_bulk_create(org, payloads, args.batch, into=baseline)
                org, key = bench_org(run_id, f"{r}-http")
                measure_http(server, key, bodies, sizes, clients=1, into=http1)
                if r == 0:
                    check = verify(server, org, key, payloads, bodies[0])
                _, key = bench_org(run_id, f"{r}-http2")
                measure_http(server, key, bodies, sizes, clients=2, into=http2)
                _, key = bench_org(run_id, f"{r}-inproc")
                measure_inprocess(key, bodies, sizes, into=inprocess)
    finally:
        cleanup(run_id)

    print(check)
    print(f"total run time {time.perf_counter() - started:.1f} s (setup, generation, measurements, cleanup); "
          f"load average {os.getloadavg()[0]:.2f}")
    print("\n".join(report([baseline, http1, http2, inprocess], baseline, http1)))


if __name__ == "__main__":
    main()
