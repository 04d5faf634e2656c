"""OR-Tools first-solution strategies, each followed by guided local search, on Solomon instances.

    .venv/bin/python -m bench.ortools_sweep --quick        # 3 instances, 5 strategies, 1 s: about 20 s
    nice -n 10 .venv/bin/python -m bench.ortools_sweep     # 6 instances, 1 s and 5 s: about 3 minutes

Our OR-Tools engine (``apps/dispatch/optimization/engines/ortools_engine.py``) as the
product builds it (matrices registered in C++, every stop optional with its
priority's drop penalty, windows, capacity), with only the first-solution strategy
changed. Every plan is re-checked in double precision by ``bench.vrp.check_exact``
and its distance compared with the same reference as ``bench.vrp`` (distance-only,
double precision). ``complete``: every customer served (a stop left out is the
engine's way to stay feasible, and costs the plan its completeness here).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.vrp import DEFAULT_DIR, SCALE, check_exact, integer_matrices, read_solomon, references  # noqa: E402

STRATEGIES = ["PATH_CHEAPEST_ARC", "PARALLEL_CHEAPEST_INSERTION", "LOCAL_CHEAPEST_INSERTION", "SAVINGS",
              "CHRISTOFIDES"]
INSTANCES = ["C101", "R101", "RC101", "C201", "R201", "RC201"]
QUICK = ["C101", "R101", "RC201"]


def run(inst, strategy: str, budget: float) -> dict:
    from apps.dispatch.optimization.build import build
    from apps.dispatch.optimization.engines import ortools_engine
    from apps.dispatch.optimization.problem import Problem, Stop, Vehicle, Window
    from apps.dispatch.optimization.travel import Matrix

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
    cpu0 = time.process_time()
    try:
        result = ortools_engine.solve(problem, build(problem), time_limit_s=budget, first_solution=strategy)
    except Exception as exc:  # a strategy OR-Tools rejects for this model is a finding, not a crash
        return {"error": f"{type(exc).__name__}: {exc}"[:60], "cpu": time.process_time() - cpu0}
    cpu = time.process_time() - cpu0
    routes = [[int(s) for s in seq] for seq in result.sequences.values() if seq]
    distance, feasible, complete, problem_found = check_exact(inst, routes)
    return {"distance": distance, "feasible": feasible, "complete": complete, "vehicles": len(routes),
            "first": result.first_plan_s, "cpu": cpu, "error": "" if feasible else problem_found,
            "dropped": len(result.dropped)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK)} at 1 s")
    parser.add_argument("--instances", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--only", default="", help="comma-separated instance names")
    parser.add_argument("--budgets", default=None, help="seconds per run, comma-separated (default 1,5; 1 with --quick)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    names = args.only.split(",") if args.only else (QUICK if args.quick else INSTANCES)
    budgets = [float(b) for b in (args.budgets or ("1" if args.quick else "1,5")).split(",")]
    strategies = args.strategies.split(",")
    ref, _ = references(args.instances, None)
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; Python {platform.python_version()}")
    print("# OR-Tools engine, guided local search after each first-solution strategy; distance-only gaps, double precision")
    print(f"{'instance':<8} {'strategy':<28} {'budget':>6} {'cpu_s':>6} {'first_s':>8} {'veh':>4} {'distance':>10} "
          f"{'gap%':>7}  status")
    rows = []
    for name in names:
        inst = read_solomon(args.instances / f"{name}.txt")
        for budget in budgets:
            for strategy in strategies:
                r = run(inst, strategy, budget)
                r.update(instance=name, strategy=strategy, budget=budget)
                ok = not r["error"] and r.get("complete")
                r["gap"] = 100 * (r["distance"] - ref[name]) / ref[name] if ok and name in ref else None
                rows.append(r)
                first = f"{r['first']:8.3f}" if r.get("first") is not None else "       -"
                gap = f"{r['gap']:7.2f}" if r["gap"] is not None else "      -"
                status = "ok" if ok else (r["error"] or f"{r.get('dropped', 0)} customers left out")
                print(f"{name:<8} {strategy:<28} {budget:>6.1f} {r['cpu']:>6.2f} {first} {r.get('vehicles', 0):>4} "
                      f"{r.get('distance', 0):>10.1f} {gap}  {status}", flush=True)
    print()
    best = None
    for budget in budgets:
        for strategy in strategies:
            mine = [r for r in rows if r["strategy"] == strategy and r["budget"] == budget]
            gaps = [r["gap"] for r in mine if r["gap"] is not None]
            line = (f"gap@{budget:g}s mean {statistics.mean(gaps):.2f}% over {len(gaps)}/{len(mine)} complete"
                    if gaps else f"gap@{budget:g}s - (0/{len(mine)} complete)")
            print(f"SUMMARY {strategy}: {line}")
            if gaps and len(gaps) == len(mine) and budget == budgets[-1]:
                score = statistics.mean(gaps)
                if best is None or score < best[1]:
                    best = (strategy, score)
    print("HEADLINE ortools first-solution sweep: "
          + (f"best complete on every instance at {budgets[-1]:g} s: {best[0]} ({best[1]:.2f}% mean gap)" if best
             else "no strategy completed every instance"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
