"""Re-planning after a breakdown: how fast a complete plan, how good after 1 s and 5 s,
and how long from the report to every affected driver's socket.

    .venv/bin/python -m bench.replan --quick       # 2 scenarios, 1 s budgets, 2 end-to-end trials; ~1 minute
    nice -n 10 .venv/bin/python -m bench.replan     # 3 scenarios, 1 s and 5 s, the 60 s reference, 20 trials

Scenario (as in ../shared/research/performance-anchors.md section 3): one depot, 10
vans mid-route at their current positions (free from 0-600 s), 200 open stops with
60-150 min windows in a 6 h remaining shift, 240 s service, at most 25 stops per van
(a parcel capacity of 25), 25 km/h on a 16 x 16 km plane. The previous plan is our own
(5 s; 1 s with --quick). The van with the most stops breaks down; its stops go to the
nine others.

Solvers, each on the same problem, every plan re-checked with the independent checker:

* ``lastmile``: ``solve(..., warm_start=current plan)``: cheapest insertion of the
  orphans first (the first complete plan), then PyVRP's search from its cold start
  with the inserted plan as the best so far (``pyvrp_engine.search``).
* ``ortools-warm``: the same, with the OR-Tools engine.
* ``pyvrp-cold``: PyVRP 0.14 directly, every stop required, no warm start.

Gap: the objective (total travel seconds) against the best plan found for the
scenario, including our 60 s solve (not in --quick, where the reference is the best
of the short runs, so gaps there are optimistic).

End-to-end: a real pipeline in one process (PostgreSQL and Redis, ``--database-url``
and ``--redis-url``, default lastmile_bench_replan and Redis db 1; the in-process task worker
polling every 50 ms; the driver WebSocket consumer over the Redis channel layer): the
breakdown is POSTed to /api/v1/exceptions/ with auto-apply on; the clock stops when
every driver whose route the first apply changed has received its ``route.updated``
(with its new stop list) on its socket. The job applies the inserted plan first and
the search's plan after it only if meaningfully better (apps/planning/replans.py);
``BENCH_DEBUG=1`` prints both. One warm-up trial is run first and not counted.

CPU: every solver row shows the CPU seconds the run actually got; on a shared machine a
wall-clock budget buys less, and the summary says how much.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

SPEED_MPS = 25 / 3.6
SHIFT_S = 6 * 3600


def scenario(seed: int):
    from apps.dispatch.optimization.problem import Problem, Stop, Vehicle, Window
    from apps.dispatch.optimization.travel import Matrix

    rng = random.Random(seed)
    points = [(8_000.0, 8_000.0)]
    vehicles = []
    for k in range(10):
        points.append((rng.uniform(0, 16_000), rng.uniform(0, 16_000)))
        free = rng.randrange(0, 601)
        vehicles.append(Vehicle(id=f"v{k}", start=len(points) - 1, end=0, shift=Window(free, SHIFT_S), capacity=(25,)))
    stops = []
    for i in range(200):
        points.append((rng.uniform(0, 16_000), rng.uniform(0, 16_000)))
        length = rng.randrange(60, 151) * 60
        start = rng.randrange(0, SHIFT_S - length)
        stops.append(Stop(id=f"s{i}", location=len(points) - 1, service_s=240, window=Window(start, start + length),
                          demand=(1,)))
    metres = [[round(math.dist(a, b)) for b in points] for a in points]
    seconds = [[round(m / SPEED_MPS) for m in row] for row in metres]
    return Problem(vehicles=tuple(vehicles), stops=tuple(stops), matrix=Matrix(seconds=seconds, metres=metres))


def cpu_limit(budget: float):
    """A PyVRP stopping criterion on this process's CPU time (``--cpu``)."""
    end = time.process_time() + budget
    return lambda best: time.process_time() >= end


def cpu_budgets() -> None:
    """Make our PyVRP engine stop on CPU time instead of the wall clock (``--cpu``), so a
    run on a shared machine searches as long as it would on a quiet one."""
    from apps.dispatch.optimization.engines import pyvrp_engine

    wall = pyvrp_engine._Stop

    class CpuStop(wall):
        def __init__(self, started: float, limit_s: float, on_progress) -> None:
            super().__init__(started, limit_s, on_progress)
            # The whole solve call gets the budget (insertion and building included).
            end = CPU_RUN[0] + CPU_RUN[1]
            self.cpu_limit = lambda best: time.process_time() >= end

        def __call__(self, best_cost: float) -> bool:
            super().__call__(best_cost)
            return self.cpu_limit(best_cost)

    pyvrp_engine._Stop = CpuStop


CPU = False  # --cpu: budgets are CPU seconds (PyVRP runs); OR-Tools keeps its wall-clock limit
CPU_RUN = [0.0, 0.0]  # the current solve call's CPU start and budget (--cpu)


def pyvrp_cold(problem, budget: float):
    """PyVRP directly, every stop required: sequences, time to first feasible."""
    import numpy as np
    import pyvrp
    from pyvrp.stop import MaxRuntime

    started = time.perf_counter()
    locs = sorted({v.start for v in problem.vehicles} | {v.end for v in problem.vehicles})
    depot_of = {loc: i for i, loc in enumerate(locs)}
    index = locs + [s.location for s in problem.stops]
    secs = np.asarray(problem.matrix.seconds)[np.ix_(index, index)]
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(0, 0) for _ in index],
        clients=[pyvrp.Client(location=len(locs) + i, delivery=list(s.demand), service_duration=s.service_s,
                              tw_early=s.window.start, tw_late=s.window.end) for i, s in enumerate(problem.stops)],
        depots=[pyvrp.Depot(location=i) for i in range(len(locs))],
        vehicle_types=[pyvrp.VehicleType(1, capacity=list(v.capacity), start_depot=depot_of[v.start],
                                         end_depot=depot_of[v.end], tw_early=v.shift.start, tw_late=v.shift.end)
                       for v in problem.vehicles],
        distance_matrices=[secs], duration_matrices=[secs],
    )
    first: list[float] = []
    limit = cpu_limit(budget) if CPU else MaxRuntime(max(0.0, budget - (time.perf_counter() - started)))

    def stop(best: float) -> bool:
        if not first and best < float("inf"):
            first.append(time.perf_counter() - started)
        return limit(best)

    result = pyvrp.solve(data, stop, seed=0, collect_stats=False)
    sequences = {v.id: [] for v in problem.vehicles}
    if result.best.is_feasible():
        for route in result.best.routes():
            sequences[problem.vehicles[route.vehicle_type()].id] = [problem.stops[a.idx].id for a in route
                                                                    if a.is_client()]
    return sequences, (first[0] if first else None), time.perf_counter() - started


def solver_runs(scenarios: int, budgets: list[float], reference_s: float | None, previous_s: float) -> list[dict]:
    from apps.dispatch.optimization.engines import Progress
    from apps.dispatch.optimization.feasibility import check
    from apps.dispatch.optimization.problem import Problem
    from apps.dispatch.optimization.schedule import make_plan
    from apps.dispatch.optimization.solve import solve

    rows = []
    for seed in range(scenarios):
        full = scenario(seed)
        CPU_RUN[:] = [time.process_time(), previous_s]
        day = solve(full, time_limit_s=previous_s * 100 if CPU else previous_s)
        broken = max(day.routes, key=lambda r: len(r.visits)).vehicle
        problem = Problem(vehicles=tuple(v for v in full.vehicles if v.id != broken), stops=full.stops,
                          matrix=full.matrix)
        current = {vid: list(seq) for vid, seq in day.sequences.items() if vid != broken}
        orphans = len(day.sequences[broken])
        results = []

        def ours(engine: str, budget: float, label: str, problem=problem, current=current, results=results):
            complete_at: list[float] = []
            t0 = time.perf_counter()
            cpu0 = time.process_time()

            def progress(p: Progress) -> None:
                if p.engine == "insertion" and p.unassigned == 0 and not complete_at:
                    complete_at.append((time.perf_counter() - t0, time.process_time() - cpu0))

            CPU_RUN[:] = [cpu0, budget]
            plan = solve(problem, time_limit_s=budget * 100 if CPU and engine != "ortools" else budget, engine=engine,
                         warm_start=current, on_progress=progress)
            first, first_cpu = complete_at[0] if complete_at else (
                (time.perf_counter() - t0, None) if plan.complete else (None, None))
            results.append({"solver": label, "budget": budget, "plan": plan, "first": first, "first_cpu": first_cpu,
                            "cpu": time.process_time() - cpu0, "errors": check(problem, plan)})

        for budget in budgets:
            ours("auto", budget, "lastmile")
            ours("ortools", budget, "ortools-warm")
            cpu0 = time.process_time()
            seqs, first, elapsed = pyvrp_cold(problem, budget)
            cpu = time.process_time() - cpu0
            plan = make_plan(problem, seqs, [], engine="pyvrp-cold", elapsed_s=elapsed, first_plan_s=first)
            served = {s for seq in seqs.values() for s in seq}
            errors = [e for e in check(problem, plan) if "neither served" not in e]
            if len(served) < len(problem.stops):
                errors.append(f"{len(problem.stops) - len(served)} stops not served")
            results.append({"solver": "pyvrp-cold", "budget": budget, "plan": plan, "first": first, "cpu": cpu,
                            "errors": errors})
        if reference_s:
            ours("auto", reference_s, "reference")
        complete = [r for r in results if not r["errors"] and r["plan"].complete]
        best = min((r["plan"].cost for r in complete), default=None)
        for r in results:
            r.update(seed=seed, orphans=orphans, best=best)
            rows.append(r)
    return rows


def end_to_end(trials: int, time_limit_s: float, fleet_plan_s: float = 2.0) -> list[float]:
    """Report a breakdown over the API; time until every affected driver's socket has its reroute."""
    import asyncio

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.core.management import call_command
    from django.db import connections
    from rest_framework.test import APIClient

    from apps.common.worker import start_inprocess_worker
    from apps.realtime.consumers import DriverConsumer

    call_command("migrate", verbosity=0)
    job_cpu = _time_the_jobs()
    worker = start_inprocess_worker(interval=0.05)
    latencies: list[float] = []

    async def trial(n: int) -> float | None:
        org, routes, dispatcher = await sync_to_async(_fleet)(n, time_limit_s, fleet_plan_s)
        sockets = {}
        for route in routes:
            comm = WebsocketCommunicator(DriverConsumer.as_asgi(), "/ws/driver/")
            comm.scope["user"] = route.driver.user
            await comm.connect()
            await comm.receive_json_from(timeout=5)  # welcome
            await comm.send_json_to({"type": "hello", "last_seq": 0})
            await comm.receive_json_from(timeout=5)  # snapshot
            sockets[route.pk] = comm
        client = APIClient()
        client.force_authenticate(dispatcher)
        broken = routes[0]
        versions = {route.pk: route.version for route in routes}
        t0 = time.perf_counter()
        response = await sync_to_async(client.post)("/api/v1/exceptions/", {"kind": "vehicle_breakdown",
                                                                            "route": broken.pk}, format="json")
        assert response.status_code == 201, response.json()
        got: dict[int, float] = {}

        async def listen(pk: int) -> None:
            # Never poll with a short timeout: channels' test communicator cancels
            # the consumer when a receive times out.
            while True:
                msg = await sockets[pk].receive_json_from(timeout=30)
                if os.environ.get("BENCH_DEBUG"):
                    print(f"# {time.perf_counter() - t0:.3f}", pk, str(msg)[:120])
                # The reroute arrives as the route.updated event, or (when the driver's
                # stream had to catch up over many events) as a snapshot with the new version.
                events = msg.get("events", []) if msg.get("type") == "events" else []
                routes = msg.get("data", {}).get("routes", []) if msg.get("type") == "snapshot" else []
                if any(e["type"] == "route.updated" and e["payload"].get("route_id") == pk for e in events) or any(
                        r["id"] == pk and r["version"] > versions[pk] for r in routes):
                    got[pk] = time.perf_counter() - t0
                    return

        listeners = {pk: asyncio.create_task(listen(pk)) for pk in sockets}
        changed: set[int] | None = None
        deadline = t0 + 15
        while time.perf_counter() < deadline:
            if changed is None:
                changed = await sync_to_async(_changed_routes)(org)
            if changed is not None and all(pk in got for pk in changed):
                break
            await asyncio.sleep(0.005)
        for task in listeners.values():
            task.cancel()
        for comm in sockets.values():
            await comm.disconnect()
        if not changed:
            print(f"# trial {n}: the replan was not applied within 15 s")
            return None
        missing = changed - set(got)
        if missing:
            print(f"# trial {n}: routes {sorted(missing)} changed but their drivers heard nothing in 15 s")
            return None
        if os.environ.get("BENCH_DEBUG"):
            await sync_to_async(_stages)(org, t0)
        return max(got[pk] for pk in changed)

    async def main() -> None:
        # The first breakdown in a fresh process also pays for imports and cold caches
        # (3-4 s at load 10); a worker is a long-running process, so it is reported, not counted.
        latency = await trial(-1)
        print(f"# warm-up trial (not counted): {latency * 1000:.0f} ms" if latency else "# warm-up trial failed",
              flush=True)
        for n in range(trials):
            latency = await trial(n)
            if latency is not None:
                latencies.append(latency)
                print(f"# end-to-end trial {n}: {latency * 1000:.0f} ms", flush=True)

    try:
        asyncio.run(main())
    finally:
        worker.stop()
        connections.close_all()
    counted = job_cpu["published"][1:]  # not the warm-up's
    if counted:
        print(f"SUMMARY replan job CPU (its worker thread) until the reroute was published: mean"
              f" {statistics.mean(counted) * 1000:.0f} ms, max {max(counted) * 1000:.0f} ms over {len(counted)} jobs;"
              f" whole job incl. re-timing and the improvement search: mean"
              f" {statistics.mean(job_cpu['job'][1:] or [0]) * 1000:.0f} ms")
    return latencies


def _time_the_jobs() -> dict[str, list[float]]:
    """Measure the CPU time the worker thread spends on each replan job, to the moment the
    reroute is handed to the channel layer and in all: on a shared machine the wall clock
    mostly measures the wait for a core, this what the pipeline costs."""
    import threading

    from apps.planning import replans
    from apps.realtime import publisher

    marks: dict[str, list[float]] = {"published": [], "job": []}
    local = threading.local()
    execute, publish = replans.replan_execute, publisher.publish_events

    def timed_execute(**kwargs):
        local.start, local.published = time.thread_time(), False
        try:
            return execute(**kwargs)
        finally:
            marks["job"].append(time.thread_time() - local.start)
            local.start = None

    def timed_publish(events):
        publish(events)
        if getattr(local, "start", None) is not None and not local.published and any(
                e.type == "route.updated" and e.payload.get("reason") == "replan" for e in events):
            local.published = True
            marks["published"].append(time.thread_time() - local.start)

    replans.replan_execute, publisher.publish_events = timed_execute, timed_publish
    return marks


def _fleet(n: int, time_limit_s: float, plan_s: float = 2.0):
    """An organization with 10 vans on the road now, 200 open stops planned by our optimizer."""
    import zoneinfo
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.accounts.actor import system_actor
    from apps.accounts.models import Organization
    from apps.accounts.services import member_create
    from apps.dispatch.inputs import RouteIn
    from apps.dispatch.models import Driver, Hub, Order, Vehicle
    from apps.dispatch.services.routes import route_create, route_publish, route_start
    from apps.planning.models import PlanningPolicy

    tag = f"{os.getpid()}-{n}-{time.time_ns()}"
    org = Organization.objects.create(name=f"Bench replan {tag}", slug=f"bench-replan-{tag}")
    PlanningPolicy.objects.create(org=org, auto_apply=True, replan_time_limit_s=time_limit_s, coalesce_s=0)
    actor = system_actor(org)
    dispatcher = member_create(org=org, username=f"disp-{tag}", password="bench-pass-1234", role="dispatcher").user
    # The hub's clock shows about noon whatever the hour of the run, so the drivers'
    # shifts (now - 1 h to now + 8 h, times of day in the hub's zone) never wrap past
    # midnight: the bench run at 23:00 UTC planned no routes with a Berlin hub.
    now = timezone.now()
    ahead = 12 - now.hour  # Etc/GMT-k is UTC+k
    zone = "UTC" if ahead == 0 else f"Etc/GMT{-ahead:+d}"
    local = now.astimezone(zoneinfo.ZoneInfo(zone))
    hub = Hub.objects.create(org=org, name="Hub", code="H", timezone=zone, address_line1="x", city="Berlin",
                             country="DE", lat=52.52, lng=13.40)
    today = local.date()
    rng = random.Random(n)
    drivers, orders = [], []
    for k in range(10):
        user = member_create(org=org, username=f"drv{k}-{tag}", password="bench-pass-1234", role="driver").user
        vehicle = Vehicle.objects.create(org=org, name=f"Van {k}", capacity_weight_kg=Decimal(800),
                                         capacity_volume_l=Decimal(6000), capacity_parcels=25, home_hub=hub)
        drivers.append(Driver.objects.create(
            org=org, user=user, name=f"Driver {k}", shift_start=(local - timedelta(hours=1)).time(),
            shift_end=(local + timedelta(hours=8)).time().replace(second=0, microsecond=0), home_hub=hub,
            current_vehicle=vehicle))
    for i in range(200):
        start = now + timedelta(minutes=rng.randrange(0, 240))
        orders.append(Order(org=org, external_id=f"o-{i}", customer_name="C", address_line1="x", city="Berlin",
                            country="DE", lat=52.47 + rng.uniform(0, 0.1), lng=13.30 + rng.uniform(0, 0.2),
                            window_start=start, window_end=start + timedelta(minutes=rng.randrange(90, 180)),
                            service_time_s=240, total_weight_kg=Decimal(2), total_volume_l=Decimal(10),
                            parcel_count=1, content_hash=f"o-{i}", hub=hub, geocode_confidence="exact"))
    orders = Order.objects.bulk_create(orders)
    # The day as our optimizer planned it, as a dispatcher would have published it.
    from apps.dispatch.optimization.solve import solve
    from apps.planning.problem_input import day_input, driver_of, order_of

    pi = day_input(hub=hub, day=today, drivers=drivers, orders=orders, now=now)
    plan = solve(pi.problem, time_limit_s=plan_s)
    by_id = {d.pk: d for d in drivers}
    routes = []
    for planned in plan.routes:
        if not planned.visits:
            continue
        driver = by_id[driver_of(planned.vehicle)]
        route = route_create(actor=actor, data=RouteIn(hub=hub.pk, date=today.isoformat(), driver=driver.pk,
                                                       vehicle=driver.current_vehicle_id,
                                                       orders=[order_of(s) for s in planned.stop_ids],
                                                       planned_start=now - timedelta(minutes=5)))
        route_publish(actor=actor, route=route)
        route = route_start(actor=actor, route=route)
        route.driver = driver
        routes.append(route)
    routes.sort(key=lambda r: -r.stops.count())  # the busiest van breaks down
    return org, routes, dispatcher


def _stages(org, t0: float) -> None:
    """Where the time went (BENCH_DEBUG): report, claim, solved, applied."""
    from apps.events.models import Event
    from apps.planning.models import PlanRun

    plan, *follow = PlanRun.objects.filter(org=org, kind="replan").order_by("id")
    reported = Event.objects.filter(org=org, type="exception.reported").values_list("created_at", flat=True).first()
    marks = {"claimed": plan.started_at, "solved": plan.finished_at, "applied": plan.published_at}
    print("# stages after the report: " + ", ".join(f"{k} +{(v - reported).total_seconds():.2f}s" for k, v in marks.items()),
          f"(first plan by {plan.result.get('engine')} in {plan.result.get('elapsed_s')} s,"
          f" {len(plan.diff.get('moved', []))} stops moved)")
    for p in follow:
        at = f"+{(p.published_at - reported).total_seconds():.2f}s" if p.published_at else "not applied"
        print(f"# improvement: {p.status} {at}, cost {plan.result.get('totals', {}).get('cost')} ->"
              f" {p.result.get('totals', {}).get('cost')}, {len(p.diff.get('moved', []))} stops moved")


def _changed_routes(org) -> set[int] | None:
    """The routes a replan applied for this organization changed; None until it is applied."""
    from apps.events.models import Event

    applied = Event.objects.filter(org=org, type="replan.applied").first()
    return None if applied is None else set(applied.payload["route_ids"])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scenarios", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-solvers", action="store_true", help="only the end-to-end part")
    parser.add_argument("--cpu", action="store_true",
                        help="solver budgets in CPU seconds (PyVRP-based runs; OR-Tools stays on the wall clock)")
    parser.add_argument("--reference-s", type=float, default=None, help="the reference solve's budget (default 60)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL",
                                                                 "postgres://postgres@127.0.0.1:5432/lastmile_bench_replan"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"))
    args = parser.parse_args(argv)
    if args.quick:
        scenarios, budgets, reference, previous, trials = 2, [1.0], None, 1.0, 2
    else:
        scenarios, budgets, reference, previous, trials = 3, [1.0, 5.0], 60.0, 5.0, 20
    scenarios = args.scenarios or scenarios
    reference = args.reference_s if args.reference_s is not None and not args.quick else reference
    trials = args.trials if args.trials is not None else trials

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The end-to-end part needs what production runs: PostgreSQL (the worker and the
    # sockets write and read concurrently) and Redis (the worker thread publishes,
    # the consumers receive, on different event loops).
    from bench.ingest import ensure_database

    ensure_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    import django

    django.setup()
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; Python {platform.python_version()}")
    print(f"# {scenarios} scenarios, budgets {budgets} {'CPU ' if args.cpu else ''}s,"
          f" reference {reference or 'best of the runs'}")
    print(f"{'scenario':>8} {'orphans':>7} {'solver':<13} {'budget':>6} {'cpu_s':>6} {'first_s':>8} {'cost':>9} "
          f"{'gap%':>6} {'unassigned':>10}  status")
    if args.cpu:
        global CPU
        CPU = True
        cpu_budgets()
    rows = [] if args.skip_solvers else solver_runs(scenarios, budgets, reference, previous)
    for r in rows:
        plan = r["plan"]
        ok = not r["errors"] and plan.complete
        gap = f"{100 * (plan.cost - r['best']) / r['best']:6.2f}" if ok and r["best"] else "     -"
        first = f"{r['first']:8.3f}" if r["first"] is not None else "       -"
        status = "ok" if ok else (r["errors"][0] if r["errors"] else "incomplete")
        print(f"{r['seed']:>8} {r['orphans']:>7} {r['solver']:<13} {r['budget']:>6.1f} {r['cpu']:>6.2f} {first} "
              f"{plan.cost:>9} {gap} "
              f"{len(plan.unassigned):>10}  {status}")
    print()
    headline = []
    for solver in ("lastmile", "ortools-warm", "pyvrp-cold") if rows else ():
        mine = [r for r in rows if r["solver"] == solver]
        firsts = [r["first"] for r in mine if r["first"] is not None]
        # The first plan's CPU time is what it costs; its wall time is that plus waiting
        # for a core on a shared machine.
        first_cpus = [r["first_cpu"] for r in mine if r.get("first_cpu") is not None]
        cpu_note = f" ({statistics.mean(first_cpus) * 1000:.0f} ms CPU)" if first_cpus else ""
        parts = [f"first complete plan mean {statistics.mean(firsts) * 1000:.0f} ms{cpu_note} max {max(firsts) * 1000:.0f} ms"
                 if firsts else "no complete plan"]
        for budget in budgets:
            gaps = [100 * (r["plan"].cost - r["best"]) / r["best"] for r in mine
                    if r["budget"] == budget and not r["errors"] and r["plan"].complete and r["best"]]
            done = sum(1 for r in mine if r["budget"] == budget and not r["errors"] and r["plan"].complete)
            n = sum(1 for r in mine if r["budget"] == budget)
            parts.append(f"gap@{budget:g}s {statistics.mean(gaps):.2f}% ({done}/{n} complete)" if gaps
                         else f"gap@{budget:g}s - ({done}/{n} complete)")
        print(f"SUMMARY {solver}: " + ", ".join(parts))
        if solver == "lastmile":
            headline.append(f"first plan {statistics.mean(firsts) * 1000:.0f} ms{cpu_note}" if firsts else "no first plan")
            headline += parts[1:]
    # On a shared machine a wall-clock budget buys less CPU: say how much each run got.
    received = []
    for budget in [*budgets, *([reference] if reference else [])] if rows else ():
        cpus = [r["cpu"] for r in rows if r["budget"] == budget]
        mean = statistics.mean(cpus)
        received.append(f"{budget:g} s budget: mean {mean:.2f} CPU s ({100 * mean / budget:.0f}%)")
    if rows:
        print("SUMMARY CPU received per run: " + "; ".join(received))
        headline.append(f"CPU {100 * statistics.mean(r['cpu'] / r['budget'] for r in rows):.0f}% of budget")
    if not args.skip_e2e and trials:
        latencies = end_to_end(trials, time_limit_s=0.5, fleet_plan_s=0.5 if args.quick else 2.0)
        if latencies:
            line = (f"breakdown report -> reroute on every affected driver's socket: p50 {pct(latencies, 0.5) * 1000:.0f} ms,"
                    f" p95 {pct(latencies, 0.95) * 1000:.0f} ms over {len(latencies)} trials (replan budget 0.5 s)")
            print("SUMMARY " + line)
            headline.append(f"e2e p95 {pct(latencies, 0.95) * 1000:.0f} ms")
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    print("HEADLINE lastmile replan: " + "; ".join(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
