"""Lastmile's optimizer beside PyVRP and VROOM on the Solomon VRPTW instances.

    .venv/bin/python -m bench.vrp --quick          # 6 instances at 1 s, well inside a minute
    nice -n 10 .venv/bin/python -m bench.vrp        # all 56 at 1 s and 5 s (about 20 minutes)
    .venv/bin/python -m bench.vrp --instances DIR [--bks FILE.csv] --budgets 5

Every solver gets the same integer data: coordinates x100, distances rounded for
the cost, travel times rounded *up* so that a plan feasible in integers is feasible
in exact arithmetic. Every plan is then re-evaluated and re-checked here in double
precision (windows on the start of service, capacity, the depot's closing time,
every customer exactly once); a plan that fails is reported as such, not counted.

Convention (state it beside every gap): objective = total distance with any number
of vehicles (distance-only), double precision. Reference per instance: the proven
DIMACS-optimal routes re-evaluated in double precision where they stay feasible
(48 of 56), else the distance-only literature BKS (``../shared/data/solomon``,
PROVENANCE.md). Vehicle counts are compared with the hierarchical BKS (bks.csv).

Solvers, one thread each, the same budget per instance:

* ``lastmile``: ``apps.dispatch.optimization.solve`` (engine ``auto``), all stops
  optional with drop penalties, as the product runs it; the budget includes building.
* ``pyvrp``: PyVRP 0.14 directly, every client required, ``MaxRuntime(budget)``.
* ``vroom``: pyvroom 1.15, exploration level 5, one thread, ``timeout=budget``.

Time to first plan: the first complete feasible plan (lastmile, PyVRP); VROOM only
returns its final plan, so its figure is its run time.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

SCALE = 100
DEFAULT_DIR = Path(os.environ.get("LASTMILE_SHARED") or BASE_DIR.parent / "shared") / "data" / "solomon"
QUICK = ["C101", "C201", "R101", "R201", "RC101", "RC201"]


@dataclass
class Instance:
    name: str
    capacity: int
    vehicles: int
    xy: list[tuple[float, float]]
    demand: list[int]
    ready: list[int]
    due: list[int]
    service: list[int]

    @property
    def n(self) -> int:
        return len(self.xy)

    def d(self, i: int, j: int) -> float:
        return math.dist(self.xy[i], self.xy[j])


def read_solomon(path: Path) -> Instance:
    lines = [line.split() for line in path.read_text().splitlines()]
    name = lines[0][0]
    numbers = [row for row in lines if row and all(_isnum(x) for x in row)]
    vehicles, capacity = int(numbers[0][0]), int(numbers[0][1])
    rows = [[float(x) for x in row] for row in numbers[1:] if len(row) == 7]
    return Instance(
        name=name, capacity=capacity, vehicles=vehicles, xy=[(r[1], r[2]) for r in rows],
        demand=[int(r[3]) for r in rows], ready=[int(r[4]) for r in rows], due=[int(r[5]) for r in rows],
        service=[int(r[6]) for r in rows],
    )


def _isnum(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def integer_matrices(inst: Instance) -> tuple[list[list[int]], list[list[int]]]:
    cost = [[round(inst.d(i, j) * SCALE) for j in range(inst.n)] for i in range(inst.n)]
    dur = [[math.ceil(inst.d(i, j) * SCALE - 1e-9) for j in range(inst.n)] for i in range(inst.n)]
    return cost, dur


@dataclass
class Result:
    solver: str
    instance: str
    budget: float
    routes: list[list[int]]
    first_s: float | None
    elapsed_s: float
    distance: float = 0.0
    feasible: bool = False
    complete: bool = False
    problem: str = ""


def check_exact(inst: Instance, routes: list[list[int]]) -> tuple[float, bool, bool, str]:
    """Distance, feasible, complete, and the first problem found, in double precision."""
    seen: set[int] = set()
    total = 0.0
    for route in routes:
        clock, here, load = 0.0, 0, 0
        for c in route:
            if c in seen or not 0 < c < inst.n:
                return total, False, False, f"customer {c} twice or unknown"
            seen.add(c)
            clock += inst.d(here, c)
            total += inst.d(here, c)
            if clock > inst.due[c] + 1e-6:
                return total, False, False, f"customer {c} late by {clock - inst.due[c]:.4f}"
            clock = max(clock, inst.ready[c]) + inst.service[c]
            load += inst.demand[c]
            here = c
        total += inst.d(here, 0)
        if route and clock + inst.d(here, 0) > inst.due[0] + 1e-6:
            return total, False, False, "back at the depot after it closes"
        if load > inst.capacity:
            return total, False, False, f"load {load} > {inst.capacity}"
    complete = len(seen) == inst.n - 1
    return total, True, complete, "" if complete else f"{inst.n - 1 - len(seen)} customers not served"


def run_lastmile(inst: Instance, budget: float) -> Result:
    from apps.dispatch.optimization.problem import Problem, Stop, Vehicle, Window
    from apps.dispatch.optimization.solve import solve
    from apps.dispatch.optimization.travel import Matrix

    started = time.perf_counter()
    cost, dur = integer_matrices(inst)
    shift = Window(inst.ready[0] * SCALE, inst.due[0] * SCALE)
    problem = Problem(
        vehicles=tuple(Vehicle(id=f"v{k}", start=0, end=0, shift=shift, capacity=(inst.capacity,))
                       for k in range(inst.vehicles)),
        stops=tuple(Stop(id=str(c), location=c, service_s=inst.service[c] * SCALE,
                         window=Window(inst.ready[c] * SCALE, inst.due[c] * SCALE), demand=(inst.demand[c],))
                    for c in range(1, inst.n)),
        matrix=Matrix(seconds=dur, metres=cost), objective="distance",
    )
    plan = solve(problem, time_limit_s=budget - (time.perf_counter() - started))
    elapsed = time.perf_counter() - started
    from apps.dispatch.optimization.feasibility import check

    errors = check(problem, plan)
    routes = [[int(s) for s in r.stop_ids] for r in plan.routes if r.visits]
    res = Result("lastmile", inst.name, budget, routes, plan.first_plan_s, elapsed)
    if errors:
        res.problem = f"own checker: {errors[0]}"
    return res


def run_pyvrp(inst: Instance, budget: float) -> Result:
    import numpy as np
    import pyvrp
    from pyvrp.stop import MaxRuntime

    started = time.perf_counter()
    cost, dur = integer_matrices(inst)
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(x, y) for x, y in inst.xy],
        clients=[pyvrp.Client(location=c, delivery=[inst.demand[c]], service_duration=inst.service[c] * SCALE,
                              tw_early=inst.ready[c] * SCALE, tw_late=inst.due[c] * SCALE) for c in range(1, inst.n)],
        depots=[pyvrp.Depot(location=0, tw_early=inst.ready[0] * SCALE, tw_late=inst.due[0] * SCALE)],
        vehicle_types=[pyvrp.VehicleType(num_available=inst.vehicles, capacity=[inst.capacity],
                                         tw_early=inst.ready[0] * SCALE, tw_late=inst.due[0] * SCALE)],
        distance_matrices=[np.asarray(cost)], duration_matrices=[np.asarray(dur)],
    )
    first: list[float] = []
    limit = MaxRuntime(max(0.0, budget - (time.perf_counter() - started)))

    def stop(best_cost: float) -> bool:
        if not first and best_cost < float("inf"):
            first.append(time.perf_counter() - started)
        return limit(best_cost)

    result = pyvrp.solve(data, stop, seed=0, collect_stats=False)
    elapsed = time.perf_counter() - started
    routes = [[a.idx + 1 for a in r if a.is_client()] for r in result.best.routes()] if result.best.is_feasible() else []
    return Result("pyvrp", inst.name, budget, routes, first[0] if first else None, elapsed)


def run_vroom(inst: Instance, budget: float) -> Result:
    import vroom

    started = time.perf_counter()
    cost, dur = integer_matrices(inst)
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=dur)
    problem.set_costs_matrix(profile="car", matrix_input=cost)
    for k in range(inst.vehicles):
        problem.add_vehicle(vroom.Vehicle(id=k, start=0, end=0, capacity=[inst.capacity],
                                          time_window=vroom.TimeWindow(inst.ready[0] * SCALE, inst.due[0] * SCALE)))
    for c in range(1, inst.n):
        problem.add_job(vroom.Job(id=c, location=c, default_service=inst.service[c] * SCALE, delivery=[inst.demand[c]],
                                  time_windows=[vroom.TimeWindow(inst.ready[c] * SCALE, inst.due[c] * SCALE)]))
    solution = problem.solve(exploration_level=5, nb_threads=1,
                             timeout=timedelta(seconds=max(0.05, budget - (time.perf_counter() - started))))
    elapsed = time.perf_counter() - started
    frame = solution.routes
    routes: dict[int, list[int]] = {}
    for row in frame.itertuples():
        if row.type == "job":
            routes.setdefault(int(row.vehicle_id), []).append(int(row.id))
    return Result("vroom", inst.name, budget, list(routes.values()), elapsed, elapsed)


SOLVERS = {"lastmile": run_lastmile, "pyvrp": run_pyvrp, "vroom": run_vroom}


def references(folder: Path, bks: Path | None) -> tuple[dict[str, float], dict[str, int]]:
    ref: dict[str, float] = {}
    vehicles: dict[str, int] = {}
    if bks is not None:
        with bks.open() as fh:
            for row in csv.DictReader(fh):
                ref[row["instance"]] = float(row.get("distance") or row.get("distance_double"))
                if row.get("vehicles"):
                    vehicles[row["instance"]] = int(row["vehicles"])
        return ref, vehicles
    exact = folder / "dimacs_optimal_routes_in_double.csv"
    literature = folder / "bks_distance_only.csv"
    hierarchical = folder / "bks.csv"
    if literature.exists():
        with literature.open() as fh:
            ref.update({r["instance"]: float(r["distance"]) for r in csv.DictReader(fh)})
    if exact.exists():
        with exact.open() as fh:
            for r in csv.DictReader(fh):
                if r["feasible_in_exact_arithmetic"] == "yes":
                    ref[r["instance"]] = float(r["distance_double"])
    if hierarchical.exists():
        with hierarchical.open() as fh:
            vehicles = {r["instance"]: int(r["vehicles"]) for r in csv.DictReader(fh)}
    return ref, vehicles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--bks", type=Path, default=None, help="CSV with instance,distance[,vehicles]")
    parser.add_argument("--budgets", default="1,5", help="seconds per instance, comma-separated")
    parser.add_argument("--solvers", default="lastmile,pyvrp,vroom")
    parser.add_argument("--only", default="", help="comma-separated instance names")
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK)} at 1 s")
    parser.add_argument("--csv", type=Path, default=None, help="write every result row here")
    args = parser.parse_args(argv)

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()

    files = sorted(p for p in args.instances.glob("*.txt") if p.is_file())
    if args.quick:
        files = [p for p in files if p.stem in QUICK]
        args.budgets = "1"
    if args.only:
        wanted = set(args.only.split(","))
        files = [p for p in files if p.stem in wanted]
    if not files:
        print(f"no instances in {args.instances}", file=sys.stderr)
        return 2
    budgets = [float(b) for b in args.budgets.split(",")]
    solvers = args.solvers.split(",")
    ref, bks_vehicles = references(args.instances, args.bks)
    print(f"# {len(files)} instances from {args.instances}; budgets {budgets} s; solvers {solvers}")
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs,"
          f" load {os.getloadavg()[0]:.1f}; Python {platform.python_version()}")
    print("# gap: distance-only, double precision, vs the DIMACS-optimal routes in double where feasible,"
          " else the distance-only literature BKS")
    print(f"{'instance':<8} {'budget':>6} {'solver':<9} {'veh':>4} {'bksV':>4} {'distance':>10} {'ref':>10}"
          f" {'gap%':>7} {'first_s':>8} {'time_s':>7}  status")
    rows: list[Result] = []
    for budget in budgets:
        for path in files:
            inst = read_solomon(path)
            for solver in solvers:
                res = SOLVERS[solver](inst, budget)
                res.distance, res.feasible, res.complete, problem = check_exact(inst, res.routes)
                res.problem = res.problem or problem
                if not res.routes:
                    res.feasible, res.complete, res.problem = False, False, "no plan"
                rows.append(res)
                r = ref.get(inst.name)
                gap = f"{100 * (res.distance - r) / r:7.2f}" if r and res.complete and res.feasible else "      -"
                status = "ok" if res.feasible and res.complete and not res.problem else (res.problem or "infeasible")
                first = f"{res.first_s:8.3f}" if res.first_s is not None else "       -"
                print(f"{inst.name:<8} {budget:>6.1f} {solver:<9} {len(res.routes):>4} {bks_vehicles.get(inst.name, 0):>4}"
                      f" {res.distance:>10.2f} {r or 0:>10.2f} {gap} {first} {res.elapsed_s:>7.2f}  {status}", flush=True)
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["instance", "budget", "solver", "vehicles", "distance", "feasible", "complete", "first_s",
                        "time_s", "problem"])
            for r in rows:
                w.writerow([r.instance, r.budget, r.solver, len(r.routes), f"{r.distance:.2f}", r.feasible, r.complete,
                            r.first_s, f"{r.elapsed_s:.3f}", r.problem])
    print()
    headline = []
    for budget in budgets:
        for solver in solvers:
            mine = [r for r in rows if r.solver == solver and r.budget == budget]
            ok = [r for r in mine if r.feasible and r.complete and not r.problem]
            gaps = [100 * (r.distance - ref[r.instance]) / ref[r.instance] for r in ok if r.instance in ref]
            firsts = [r.first_s for r in ok if r.first_s is not None]
            veh = sum(len(r.routes) for r in ok)
            line = (f"{solver} @{budget:g}s: complete+feasible {len(ok)}/{len(mine)}, mean gap "
                    f"{statistics.mean(gaps):.2f}% (max {max(gaps):.2f}%)" if gaps else
                    f"{solver} @{budget:g}s: complete+feasible {len(ok)}/{len(mine)}, no gap")
            line += (f", vehicles {veh}, first plan median {statistics.median(firsts):.3f}s max {max(firsts):.3f}s"
                     if firsts else "")
            print("SUMMARY " + line)
            if gaps:
                headline.append(f"{solver}@{budget:g}s {statistics.mean(gaps):.2f}% {len(ok)}/{len(mine)}")
    print("HEADLINE mean gap (distance-only, double): " + "; ".join(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
