"""The reports API on a year of history, beside the same KPIs computed from the raw tables.

    .venv/bin/python -m bench.reports            # 365 days x 5,000 orders: docs/performance.md
    .venv/bin/python -m bench.reports --quick    # 31 days, well inside a minute once generated

PostgreSQL only, in its own database (default ``lastmile_reports_bench``, created and
migrated if missing). History is generated once per size into an organization of its
own (``bench-reports-<days>d``) and reused by later runs:

* orders, routes and stops written with ``COPY`` (ids assigned here, sequences moved
  past them afterwards): 3 hubs, 150 drivers with a route each per day, 5,000 new
  orders a day from 5 partner sources; 7 % of attempts fail (half re-attempted the next
  day on that day's route), 1 % of orders are cancelled before planning, arrival times
  scatter around the plan, ETAs around the arrival, a third of orders need a proof;
* then ``manage.py reports_rebuild`` fills the summary tables, day by day, through the
  same code the background job runs (its time per day is the per-day maintenance cost).

Measured, for typical filter combinations (range x hub / driver / partner):

* ``page``: the requests the console's reports page makes on load or on a filter change
  (KPIs, daily series, per-hub, per-driver and per-source breakdowns, failures per reason)
  through DRF's test client in this process, as a dispatcher. The figure is the sum.
* ``kpis``: the KPI request alone.
* ``drill``: the first page (50 rows) of the orders behind a rare figure (failed,
  address not found), as a click on a tile or reason fetches it.
* ``raw``: the baseline. The same KPIs computed straight from the dispatch tables
  (``report_kpis(mode="raw")``: the code that builds the summary, run over the range).

Each figure is the best of ``--rounds`` (default 3): the machine is shared and other
processes only add time. The last line is the headline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from bench.ingest import setup_django  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lastmile_reports_bench"
TARGET_S = 1.0
TZ = ZoneInfo("Europe/Berlin")
SOURCES = [("shopify:kiez-store", 0.35), ("woo:bio-markt", 0.2), ("erp:moebel", 0.2), ("api", 0.15), ("csv", 0.1)]
REASONS = [("recipient_absent", 0.55), ("address_not_found", 0.12), ("refused", 0.1), ("access_denied", 0.1),
           ("damaged", 0.05), ("unsafe", 0.03), ("other", 0.05)]
HUBS = [("BER-N", "Berlin Nord", 52.5600, 13.3500), ("BER-O", "Berlin Ost", 52.5100, 13.4900),
        ("BER-S", "Berlin Süd", 52.4500, 13.3900)]
DRIVERS_PER_HUB = 50
FAIL_RATE = 0.07
RETRY_SHARE = 0.5
CANCEL_RATE = 0.01


def weighted(rng: random.Random, table: list[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


# --- generation -----------------------------------------------------------------------


def _columns(model, skip=()) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if f.column not in skip]


def _next_id(cursor, table: str) -> int:
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
    return cursor.fetchone()[0]


def _fix_sequence(cursor, table: str) -> None:
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")


def generate(slug: str, days: int, per_day: int, first_day: date, log) -> Any:
    """Create the organization, its fleet and ``days`` of history. Returns the org."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from apps.accounts.services import member_create, organization_create
    from apps.dispatch.models import Driver, Hub, Order, Route, Stop, Vehicle

    started = time.monotonic()
    org = organization_create(name=f"Bench reports {days}d", slug=slug, timezone_name="Europe/Berlin")
    member_create(org=org, username=f"{slug}-dispatcher", password="bench-bench-bench", role="dispatcher")
    hubs = [Hub.objects.create(org=org, code=code, name=name, timezone="Europe/Berlin", address_line1="Depot 1",
                               city="Berlin", country="DE", lat=lat, lng=lng) for code, name, lat, lng in HUBS]
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"{slug}-d{i}")
                                                  for i in range(len(hubs) * DRIVERS_PER_HUB)])
    vans = Vehicle.objects.bulk_create([
        Vehicle(org=org, name=f"Van {i}", plate=f"B-RB {i}", capacity_weight_kg=900, capacity_volume_l=8000,
                capacity_parcels=150, home_hub=hubs[i // DRIVERS_PER_HUB]) for i in range(len(users))])
    drivers = Driver.objects.bulk_create([
        Driver(org=org, user=u, name=f"Driver {i:03d}", shift_start=dtime(8), shift_end=dtime(17),
               home_hub=hubs[i // DRIVERS_PER_HUB], current_vehicle=vans[i]) for i, u in enumerate(users)])

    rng = random.Random(20261201)
    now = datetime.now(UTC)
    order_cols = _columns(Order)
    stop_cols = _columns(Stop)
    route_cols = _columns(Route)
    n_routes = len(drivers)
    with connection.cursor() as cursor:
        base_order, base_stop, base_route = (_next_id(cursor, t) for t in ("dispatch_order", "dispatch_stop",
                                                                            "dispatch_route"))
    stop_id = base_stop
    retries: list[tuple[int, dict[str, Any]]] = []  # (order id, order facts) re-attempted the next day
    for d in range(days):
        day = first_day + timedelta(days=d)
        route_base = base_route + d * n_routes
        start_local = datetime.combine(day, dtime(8), tzinfo=TZ)
        orders, stops = [], []
        per_route: list[list[tuple[int, dict[str, Any], bool]]] = [[] for _ in range(n_routes)]
        for order_id, facts in retries:
            per_route[rng.randrange(n_routes)].append((order_id, facts, True))
        retries = []
        for i in range(per_day):
            order_id = base_order + d * per_day + i
            hub_i = i % len(hubs)
            window_start = start_local + timedelta(hours=rng.randrange(0, 8))
            facts = {
                "source": weighted(rng, SOURCES), "hub": hubs[hub_i].pk,
                "lat": round(hubs[hub_i].lat + rng.uniform(-0.05, 0.05), 6),
                "lng": round(hubs[hub_i].lng + rng.uniform(-0.08, 0.08), 6),
                "window_start": window_start, "window_end": window_start + timedelta(hours=3),
                "pod": rng.choice([[], [], ["photo"], ["signature", "photo"], ["notes"], []]),
            }
            cancelled = rng.random() < CANCEL_RATE
            if cancelled:
                facts["state"], facts["outcome"] = "cancelled", ""
                facts["completed_at"] = start_local - timedelta(hours=1)
            else:
                route_i = hub_i * DRIVERS_PER_HUB + rng.randrange(DRIVERS_PER_HUB)
                per_route[route_i].append((order_id, facts, False))
            orders.append((order_id, facts))

        routes = []
        for r, visits in enumerate(per_route):
            route_id = route_base + r
            hub = hubs[r // DRIVERS_PER_HUB]
            clock = start_local + timedelta(minutes=rng.randrange(0, 20))
            route_started = clock
            for seq, (order_id, facts, retry) in enumerate(visits, start=1):
                planned = start_local + timedelta(minutes=10 + 11 * seq)
                clock = max(clock + timedelta(minutes=rng.randint(6, 16)), planned - timedelta(minutes=30))
                arrival = clock
                eta = arrival + timedelta(seconds=int(rng.gauss(0, 420)))
                failed = rng.random() < FAIL_RATE
                reason = weighted(rng, REASONS) if failed else ""
                completed = arrival + timedelta(minutes=rng.randint(1, 5))
                clock = completed
                notes = "Left at the door" if rng.random() < 0.5 else ""
                stops.append({
                    "id": stop_id, "org_id": org.pk, "order_id": order_id, "route_id": route_id, "kind": "delivery",
                    "sequence": seq, "planned_arrival": planned, "eta": eta, "state": "completed",
                    "outcome": "failed" if failed else "succeeded", "failure_reason": reason, "notes": notes,
                    "arrived_at": arrival, "completed_at": completed, "created_at": now, "updated_at": now})
                stop_id += 1
                if failed and rng.random() < RETRY_SHARE and d + 1 < days:
                    retries.append((order_id, facts))
                    facts["state"], facts["outcome"], facts["reason"] = "created", "", ""
                else:
                    facts["state"] = "completed"
                    facts["outcome"] = "failed" if failed else "delivered"
                    facts["reason"] = reason
                    facts["completed_at"] = completed
                facts["attempts"] = facts.get("attempts", 0) + 1
                if retry:
                    # The order row was written on its first day: bring it up to date.
                    facts["update"] = True
            routes.append({
                "id": route_id, "org_id": org.pk, "hub_id": hub.pk, "driver_id": drivers[r].pk, "vehicle_id": vans[r].pk,
                "date": day, "name": f"{hub.code} {r}", "start_lat": hub.lat, "start_lng": hub.lng,
                "end_lat": hub.lat, "end_lng": hub.lng, "planned_start": start_local,
                "planned_end": clock + timedelta(minutes=30), "status": "completed", "version": 2,
                "started_at": route_started, "completed_at": clock + timedelta(minutes=25), "created_at": now,
                "updated_at": now})

        updates = [(oid, f) for visits in per_route for oid, f, retry in visits if retry]
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.copy(f"COPY dispatch_route ({', '.join(route_cols)}) FROM STDIN") as copy:
                for row in routes:
                    copy.write_row([row[c] for c in route_cols])
            with cursor.copy(f"COPY dispatch_order ({', '.join(order_cols)}) FROM STDIN") as copy:
                for order_id, f in orders:
                    copy.write_row(_order_row(org.pk, order_id, f, now, order_cols))
            with cursor.copy(f"COPY dispatch_stop ({', '.join(stop_cols)}) FROM STDIN") as copy:
                for row in stops:
                    copy.write_row([row[c] for c in stop_cols])
            for order_id, f in updates:
                cursor.execute("UPDATE dispatch_order SET state=%s, outcome=%s, failure_reason=%s, attempts=%s, "
                               "completed_at=%s WHERE id=%s",
                               [f["state"], f["outcome"], f.get("reason", ""), f["attempts"], f.get("completed_at"),
                                order_id])
        if (d + 1) % max(1, days // 10) == 0 or d + 1 == days:
            log(f"  generated {d + 1}/{days} days ({time.monotonic() - started:.0f} s)")
    with connection.cursor() as cursor:
        for table in ("dispatch_order", "dispatch_stop", "dispatch_route"):
            _fix_sequence(cursor, table)
        cursor.execute("ANALYZE dispatch_order; ANALYZE dispatch_stop; ANALYZE dispatch_route")
    return org


def _order_row(org_id: int, order_id: int, f: dict[str, Any], now: datetime, cols: list[str]) -> list[Any]:
    values = {
        "id": order_id, "org_id": org_id, "source": f["source"], "external_id": f"B{order_id}",
        "reference": f"R{order_id}", "hub_id": f["hub"], "customer_name": "Erika Mustermann",
        "customer_phone": "", "customer_email": "", "geocode_confidence": "exact",
        "address_line1": "Torstraße 1", "address_line2": "", "city": "Berlin", "postal_code": "10119", "region": "",
        "country": "DE", "lat": f["lat"], "lng": f["lng"], "window_start": f["window_start"],
        "window_end": f["window_end"], "service_time_s": 180, "instructions": "", "priority": 1,
        "pod_requirements": json.dumps(f["pod"]), "required_skills": "[]", "custom_fields": "{}",
        "total_weight_kg": 2.5, "total_volume_l": 10, "parcel_count": 1, "state": f["state"],
        "outcome": f["outcome"], "failure_reason": f.get("reason", ""), "failure_notes": "",
        "attempts": f.get("attempts", 0), "content_hash": f"{order_id:064d}", "created_at": now, "updated_at": now,
        "completed_at": f.get("completed_at"),
    }
    return [values[c] for c in cols]


def ensure_history(days: int, per_day: int, log) -> tuple[Any, date, date, dict[str, float]]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.accounts.models import Organization
    from apps.dispatch.models import Order
    from apps.reports.models import ReportDay

    slug = f"bench-reports-{days}d-{per_day}"
    last_day = date(2026, 11, 30)
    first_day = last_day - timedelta(days=days - 1)
    timings: dict[str, float] = {}
    org = Organization.objects.filter(slug=slug).first()
    built = org is not None and ReportDay.objects.filter(org=org, stale=False).count() >= days
    if org is None or not built:
        if org is not None:
            log(f"removing the incomplete history of {slug}")
            org.delete()
            org = None
        get_user_model().objects.filter(username__startswith=f"{slug}-").delete()
    if org is None:
        log(f"generating {days} days x {per_day} orders into {slug} (once; reused by later runs)")
        t = time.monotonic()
        org = generate(slug, days, per_day, first_day, log)
        timings["generate_s"] = time.monotonic() - t
        t = time.monotonic()
        call_command("reports_rebuild", "--from", first_day.isoformat(), "--to", last_day.isoformat(), "--org", slug,
                     stdout=sys.stderr)
        timings["rebuild_s"] = time.monotonic() - t
        timings["rebuild_per_day_ms"] = timings["rebuild_s"] / days * 1000
    else:
        log(f"reusing {slug}: {Order.objects.filter(org=org).count():,} orders")
    return org, first_day, last_day, timings


# --- measurement ----------------------------------------------------------------------

PAGE = [("kpis", {}), ("series", {}), ("breakdown", {"by": "hub"}), ("breakdown", {"by": "driver"}),
        ("breakdown", {"by": "source"}), ("breakdown", {"by": "reason"})]


def best_of(rounds: int, fn) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(org, first_day: date, last_day: date, rounds: int, raw_days_limit: int, log) -> list[dict[str, Any]]:
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from apps.accounts.actor import system_actor
    from apps.dispatch.models import Driver, Hub
    from apps.reports.selectors import ReportFilters, report_kpis

    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username=f"{org.slug}-dispatcher"))
    hub = Hub.objects.filter(org=org).order_by("id").first()
    driver = Driver.objects.filter(org=org).order_by("id").first()
    days = (last_day - first_day).days + 1
    month = max(first_day, last_day - timedelta(days=29))
    quarter = max(first_day, last_day - timedelta(days=89))
    combos = [
        ("last 30 days, all", month, {}),
        (f"{days} days, all", first_day, {}),
        (f"{days} days, one hub", first_day, {"hub": hub.pk}),
        (f"{days} days, one driver", first_day, {"driver": driver.pk}),
        (f"{days} days, one partner", first_day, {"source": "woo:bio-markt"}),
        ("90 days, hub + partner", quarter, {"hub": hub.pk, "source": "erp:moebel"}),
    ]
    results = []
    for label, start, extra in combos:
        params = {"from": start.isoformat(), "to": last_day.isoformat(), **extra}

        def page(params=params):
            for path, more in PAGE:
                response = client.get(f"/api/v1/reports/{path}/", {**params, **more})
                assert response.status_code == 200, response.content[:300]

        def kpis_only(params=params):
            assert client.get("/api/v1/reports/kpis/", params).status_code == 200

        def drill(params=params):
            # The first page of the orders behind "failed, address not found": a rare figure,
            # so the newest-first walk has to look far for its 50 rows.
            response = client.get("/api/v1/reports/orders/", {**params, "metric": "failed:address_not_found",
                                                              "page_size": 50})
            assert response.status_code == 200 and response.json()["results"]

        summary = client.get("/api/v1/reports/kpis/", params).json()["kpis"]
        f = ReportFilters(actor=system_actor(org), date_from=start, date_to=last_day, hub_id=extra.get("hub"),
                          driver_id=extra.get("driver"), source=extra.get("source"))
        span = (last_day - start).days + 1
        raw_s = None
        # The raw path holds every attempt of the range in memory and runs at roughly
        # 12,000 attempts/s here: a whole year unfiltered (~1.9 million) is left out by default.
        if span <= raw_days_limit or "driver" in extra or "source" in extra:
            t = time.perf_counter()
            raw = report_kpis(f, mode="raw")["kpis"]
            raw_s = time.perf_counter() - t
            if raw != summary:
                raise SystemExit(f"summary and raw disagree for {label}: {summary} != {raw}")
        page_s = best_of(rounds, page)
        kpis_s = best_of(rounds, kpis_only)
        drill_s = best_of(rounds, drill)
        results.append({"label": label, "attempts": summary["attempts"], "page_s": page_s, "kpis_s": kpis_s,
                        "drill_s": drill_s, "raw_s": raw_s})
        log(f"  {label}: page {page_s * 1000:.0f} ms, kpis {kpis_s * 1000:.0f} ms, drill-down {drill_s * 1000:.0f} ms, "
            f"raw {'-' if raw_s is None else f'{raw_s:.2f} s'}")
    return results


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; PostgreSQL {pg.split()[0]}; "
            f"Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="31 days of history")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--orders-per-day", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--raw-days", type=int, default=31,
                        help="compute the raw baseline for ranges up to this many days (and any driver or partner filter)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    days = 31 if args.quick else args.days

    setup_django(args.database_url)

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.monotonic()
    log(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    org, first_day, last_day, timings = ensure_history(days, args.orders_per_day, log)
    if timings:
        log(f"generated in {timings['generate_s']:.0f} s; summary rebuilt in {timings['rebuild_s']:.0f} s "
            f"({timings['rebuild_per_day_ms']:.0f} ms per day of {args.orders_per_day} orders)")
    results = measure(org, first_day, last_day, args.rounds, args.raw_days, log)
    log("")
    log(f"{'filters':<28} {'attempts':>9} {'page ms':>8} {'kpis ms':>8} {'drill ms':>9} {'raw kpis s':>11} "
        f"{'raw/kpis':>9}")
    for r in results:
        ratio = f"{r['raw_s'] / r['kpis_s']:.0f}x" if r["raw_s"] else "-"
        raw = f"{r['raw_s']:.2f}" if r["raw_s"] is not None else "-"
        log(f"{r['label']:<28} {r['attempts']:>9,} {r['page_s'] * 1000:>8.0f} {r['kpis_s'] * 1000:>8.0f} "
            f"{r['drill_s'] * 1000:>9.0f} {raw:>11} {ratio:>9}")
    worst = max(results, key=lambda r: r["page_s"])
    whole, month = results[1], results[0]
    met = "met" if worst["page_s"] < TARGET_S else "MISSED"
    log(f"total {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.2f}")
    log(f"reports: {days} days x {args.orders_per_day} orders/day, slowest page {worst['page_s'] * 1000:.0f} ms "
        f"({worst['label']}), {days}-day kpis {whole['kpis_s'] * 1000:.0f} ms from summary; 30-day kpis "
        f"{month['kpis_s'] * 1000:.0f} ms vs {month['raw_s']:.2f} s raw (target page < {TARGET_S:.0f} s: {met})")


if __name__ == "__main__":
    main()
