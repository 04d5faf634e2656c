"""ETA refresh after a ping: 500 in-progress routes of 30 stops, one ping each.

    .venv/bin/python -m bench.eta              # 500 routes x 30 stops, 3 rounds: the figures in docs/performance.md
    .venv/bin/python -m bench.eta --quick      # 500 routes x 30 stops, 1 round, the baselines on 100 routes
    .venv/bin/python -m bench.eta --database-url postgres://postgres@127.0.0.1:5432/lastmile_bench_eta

Default database: a fresh SQLite file in var/ (deleted at the end); a PostgreSQL URL is
migrated if needed and the bench writes only into an organization of its own, which it
deletes at the end. The routes, stops and orders are inserted in bulk (the bench measures
the refresh, not planning); every route is in progress, all 30 stops still to do, with
time windows, some of them too tight to make (late-risk alerts fire).

Each round is one ping per driver and then one ``EtaTracker.flush``, the function the
fan-out tick calls: predict every remaining stop of each route, write the ETAs that moved
by ETA_MIN_CHANGE_S or more (one UPDATE for all routes of the flush), record the
late-risk changes, and push ``etas`` to the console group and ``delivery`` to each
tracking page concerned (in-memory channel layer). Timed per ping:

* ``live, cold``: the first ping of each driver: the plan is loaded (a few queries and a
  travel-time matrix over 30 stops) and the first ETAs written.
* ``live, moved`` (the headline): the driver moved 400 m on; every ETA of the route moves
  by more than 30 s, so each ping writes and pushes all 30.
* ``live, unchanged``: the driver moved 20 m; no ETA moves by 30 s: nothing is written.
* ``live, reload``: the first ping after a plan's ETA_PLAN_TTL_S (60 s) is up: one query
  checks every due route's stamp (``plans.route_stamps``) and two read the organizations'
  settings; the routes did not change, so every plan is kept.
* ``live, reload 1/6 changed`` (in the steady-state average): the same, after one route
  in six was changed elsewhere (its ``updated_at`` moved, as a visit does): those plans
  are loaded again (a few queries each, legs reused). One in six because this bench's
  stops are six minutes apart and a plan is checked every minute: about one check in six
  finds a visit.
* ``full refresh``: ``eta_route_refresh`` for the route, as after a replan: reload the
  plan and the position, write every ETA (the peer inside this design).
* ``naive`` (baseline): what a straightforward implementation does per ping: read the
  route, its stops, each stop's order (one query per stop), run ``timing.schedule`` and
  save each stop's ETA with its own UPDATE.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
TARGET_MS = 1.0


def setup_django(database_url: str | None) -> Path | None:
    sqlite_file = None
    if database_url is None:
        sqlite_file = BASE_DIR / "var" / f"bench_eta_{os.getpid()}.sqlite3"
        database_url = f"sqlite:///{sqlite_file}"
    else:
        from bench.ingest import ensure_database

        ensure_database(database_url)
    for name in ("LASTMILE_ENV", "LASTMILE_INPROCESS_WORKER", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false",
                      LOG_LEVEL="ERROR")
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return sqlite_file


def build(*, routes: int, stops: int, seed: int = 7):
    """An organization with ``routes`` in-progress routes of ``stops`` deliveries each."""
    from django.contrib.auth import get_user_model

    from apps.accounts.models import Membership
    from apps.accounts.services import organization_create
    from apps.dispatch.models import Driver, Hub, Order, Route, RouteStatus, Stop

    rng = random.Random(seed)
    slug = f"bench-eta-{os.getpid()}"
    org = organization_create(name="Bench ETA", slug=slug, timezone_name="Europe/Berlin")
    hub = Hub.objects.create(org=org, name="Depot", code="D", timezone="Europe/Berlin", address_line1="x",
                             city="Berlin", country="DE", lat=52.529, lng=13.3726)
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"{slug}-d{i}", first_name=f"Driver{i}") for i in range(routes)])
    Membership.objects.bulk_create([Membership(user=u, org=org, role="driver") for u in users])
    drivers = Driver.objects.bulk_create([
        Driver(org=org, user=u, name=f"Driver{i} Bench", shift_start="08:00", shift_end="17:00", on_duty=True)
        for i, u in enumerate(users)])
    now = datetime.now(UTC)
    day = now.date()
    route_rows = Route.objects.bulk_create([
        Route(org=org, hub=hub, driver=d, date=day, status=RouteStatus.IN_PROGRESS, start_lat=hub.lat,
              start_lng=hub.lng, end_lat=hub.lat, end_lng=hub.lng, planned_start=now - timedelta(minutes=30),
              started_at=now - timedelta(minutes=30))
        for d in drivers])
    orders, stop_rows = [], []
    for r in range(routes):
        # A loop through the city: stops ~400 m apart, windows of two hours along the day,
        # one in ten of them closing too early to make.
        lat, lng = 52.50 + rng.uniform(-0.05, 0.05), 13.40 + rng.uniform(-0.08, 0.08)
        for s in range(stops):
            lat += rng.uniform(-0.004, 0.004)
            lng += rng.uniform(-0.006, 0.006)
            start = now + timedelta(minutes=6 * s - 30)
            end = start + timedelta(minutes=20 if rng.random() < 0.1 else 120)
            orders.append(Order(org=org, hub=hub, external_id=f"r{r}s{s}", customer_name="Bench", address_line1="x",
                                city="Berlin", country="DE", lat=lat, lng=lng, service_time_s=120,
                                window_start=start, window_end=end, state="out_for_delivery",
                                content_hash=f"{r:032d}{s:032d}"))
    orders = Order.objects.bulk_create(orders, batch_size=2000)
    for r, route in enumerate(route_rows):
        for s in range(stops):
            stop_rows.append(Stop(org=org, order=orders[r * stops + s], route=route, sequence=s + 1))
    Stop.objects.bulk_create(stop_rows, batch_size=2000)
    return org, drivers, route_rows


def _along(route_stops, metres: float):
    """A point ``metres`` short of the route's first stop, coming from the south."""
    first = route_stops[0]
    return first[0] - metres / 111_195.0, first[1]


def run(args) -> None:
    from django.conf import settings
    from django.db import connection, transaction

    from apps.dispatch import timing
    from apps.dispatch.models import Route, Stop
    from apps.eta import live
    from apps.eta.services import eta_route_refresh
    from apps.tracking import fanout

    fanout.coalescer.autostart = False
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    t0 = time.perf_counter()
    org, drivers, routes = build(routes=args.routes, stops=args.stops)
    print(f"built {len(routes)} routes x {args.stops} stops in {time.perf_counter() - t0:.1f} s "
          f"({connection.vendor}, {platform.python_version()}, load {os.getloadavg()[0]:.2f})", flush=True)
    firsts = {r.pk: list(Stop.objects.filter(route=r).order_by("sequence")
                         .values_list("order__lat", "order__lng")[:1]) for r in routes}

    totals: dict[str, list[float]] = {"live, cold": [], "live, moved": [], "live, unchanged": [], "live, reload": [],
                                      "live, reload 1/6 changed": []}
    # CPU time of this process (the machine may be shared: wall time includes waiting for a core).
    cpu_totals: dict[str, list[float]] = {name: [] for name in totals}

    def live_round(name: str, offset_m: float, shift_s: float) -> list[float]:
        """One ping per driver, then one flush (as the fan-out tick does): the total is
        the flush, pushes included; the per-ping figures are each driver's refresh."""
        for driver, route in zip(drivers, routes, strict=True):
            lat, lng = _along(firsts[route.pk], offset_m)
            # The fix is as old as the refresh's "now" says: a stale one would not be used.
            live.observe(driver_id=driver.pk, lat=lat, lng=lng, at=clock_base + shift_s)
        timings: list[float] = []
        start, cpu = time.perf_counter(), time.process_time()
        refreshed = live.flush(now=clock_base + shift_s, timings=timings)
        totals[name].append(time.perf_counter() - start)
        cpu_totals[name].append(time.process_time() - cpu)
        assert refreshed == len(routes), refreshed
        return [t * 1000 for t in timings]

    rows: dict[str, list[list[float]]] = {"live, cold": [], "live, moved": [], "live, unchanged": [], "live, reload": [],
                                          "live, reload 1/6 changed": [],
                                          "full refresh": [], "naive (baseline)": []}
    baseline_n = args.baseline_routes
    # The rounds' clock is fixed, not the wall clock: a slow cold round must not eat the moved
    # round's 400 m (about 60 s of ETA).
    clock_base = time.time()
    for rnd in range(args.rounds):
        live.tracker.reset()
        shift = rnd * 3600.0  # each round an hour later: every ETA moves again
        rows["live, cold"].append(live_round("live, cold", 2000, shift))
        rows["live, moved"].append(live_round("live, moved", 1600, shift + 1))
        rows["live, unchanged"].append(live_round("live, unchanged", 1580, shift + 2))
        live.tracker.expire()  # every plan due for its ETA_PLAN_TTL_S reload
        rows["live, reload"].append(live_round("live, reload", 1560, shift + 3))
        # One route in six changed elsewhere since the last check: its stamp moves.
        Route.objects.filter(pk__in=[r.pk for r in routes[::6]]).update(
            updated_at=datetime.now(UTC) + timedelta(seconds=rnd + 1))
        live.tracker.expire()
        rows["live, reload 1/6 changed"].append(live_round("live, reload 1/6 changed", 1540, shift + 4))

        times = []
        for route in routes[:baseline_n]:
            start = time.perf_counter()
            with transaction.atomic():
                eta_route_refresh(route=Route.objects.select_for_update(of=("self",)).select_related("driver")
                                  .get(pk=route.pk))
            times.append((time.perf_counter() - start) * 1000)
        rows["full refresh"].append(times)

        times = []
        for route in routes[:baseline_n]:
            lat, lng = _along(firsts[route.pk], 1500)
            start = time.perf_counter()
            naive_refresh(route.pk, (lat, lng), datetime.now(UTC), timing)
            times.append((time.perf_counter() - start) * 1000)
        rows["naive (baseline)"].append(times)
        print(f"round {rnd + 1}/{args.rounds} done", flush=True)

    print()
    print("total s: the whole flush (pushes included) for the live rows, the sum of the pings otherwise; ms/ping = "
          "total / pings. p50 and p95: one driver's refresh (pushes excluded for the live rows).")
    print("cpu ms/ping: this process's CPU time over the flush (live rows), which waiting for a busy core does not inflate.")
    print(f"{'method':<26} {'pings':>6} {'total s':>8} {'ms/ping':>8} {'cpu ms/ping':>11} {'p50 ms':>7} {'p95 ms':>7}"
          "   ms/ping per round")
    per_ping: dict[str, float] = {}
    cpu_per_ping: dict[str, float | None] = {}
    for name, per_round in rows.items():
        round_totals = totals.get(name) or [sum(r) / 1000 for r in per_round]
        best_index = min(range(len(per_round)), key=lambda i: round_totals[i])
        best, total = per_round[best_index], round_totals[best_index]
        per_ping[name] = total * 1000 / len(best)
        cpu_ms = cpu_totals[name][best_index] * 1000 / len(best) if name in cpu_totals else None
        cpu_per_ping[name] = cpu_ms
        p95 = sorted(best)[int(0.95 * (len(best) - 1))]
        cpu_text = f"{cpu_ms:>11.3f}" if cpu_ms is not None else f"{'-':>11}"
        print(f"{name:<26} {len(best):>6} {total:>8.3f} {per_ping[name]:>8.3f} {cpu_text} {statistics.median(best):>7.3f} "
              f"{p95:>7.3f}   " + " ".join(f"{t * 1000 / len(r):.3f}" for t, r in zip(round_totals, per_round, strict=True)))
    moved, unchanged, naive = per_ping["live, moved"], per_ping["live, unchanged"], per_ping["naive (baseline)"]
    # In steady state a driver pinging every ETA_MIN_INTERVAL_S has one reload per
    # ETA_PLAN_TTL_S: the average per ping includes its share.
    per_reload = max(1, round(settings.ETA_PLAN_TTL_S / settings.ETA_MIN_INTERVAL_S))
    # The reload that finds one route in six changed: the conservative one.
    steady = (per_ping["live, reload 1/6 changed"] + (per_reload - 1) * moved) / per_reload
    cpu_moved = cpu_per_ping["live, moved"] or 0.0
    cpu_steady = ((cpu_per_ping["live, reload 1/6 changed"] or 0.0) + (per_reload - 1) * cpu_moved) / per_reload
    verdict = "met" if max(moved, steady) < TARGET_MS else (
        "missed on wall time, met on CPU time" if max(cpu_moved, cpu_steady) < TARGET_MS else "missed")
    print()
    cleanup(org)
    print(f"eta: {len(routes)} routes x {args.stops} stops, one ping each: {moved:.3f} ms/ping "
          f"({moved * len(routes) / 1000:.2f} s in all) when every ETA moves, {unchanged:.3f} ms/ping when none does, "
          f"{steady:.3f} ms/ping with the periodic plan reload (CPU {cpu_moved:.3f} / {cpu_steady:.3f}); "
          f"naive {naive:.2f} ms/ping ({naive / moved:.0f}x); target <{TARGET_MS:g} ms/ping: {verdict}")


def naive_refresh(route_id, origin, now, timing) -> None:
    """The baseline: per-stop queries and saves, as a first implementation would do it."""
    from django.db import transaction

    from apps.dispatch.models import Order, Route, Stop

    with transaction.atomic():
        route = Route.objects.get(pk=route_id)
        stops = [s for s in Stop.objects.filter(route=route).order_by("sequence") if s.is_open]
        visits = []
        for stop in stops:
            order = Order.objects.get(pk=stop.order_id)
            visits.append(timing.Visit(order.lat, order.lng, order.service_time_s, order.window_start))
        for stop, arrival in zip(stops, timing.schedule(now, origin, visits), strict=True):
            stop.eta = arrival
            stop.save(update_fields=["eta"])


def cleanup(org) -> None:
    from django.contrib.auth import get_user_model

    from apps.dispatch.models import Route

    users = list(org.memberships.values_list("user_id", flat=True))
    Route.objects.filter(org=org).delete()
    org.delete()
    get_user_model().objects.filter(pk__in=users).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round, baselines on 100 routes (< 1 minute)")
    parser.add_argument("--routes", type=int, default=500)
    parser.add_argument("--stops", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-routes", type=int, default=None, help="routes the baselines run on (default: all)")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in var/")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
        args.baseline_routes = args.baseline_routes or 100
    args.baseline_routes = min(args.baseline_routes or args.routes, args.routes)
    sqlite_file = setup_django(args.database_url)
    try:
        run(args)
    finally:
        if sqlite_file is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_file}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
