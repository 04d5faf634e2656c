"""Mixed load on production's shape: drivers pinging, consoles watching, partners posting
orders and drivers completing stops with photos, all at once, against a load balancer,
Daphne processes and leased workers on PostgreSQL and Redis (bench/topology.py).

    .venv/bin/python -m bench.load --quick    # one step of 200 drivers, within a minute
    .venv/bin/python -m bench.load            # steps of 250, 500, 1000, 2000 drivers until one fails

Every kind's rate follows the fleet (per ``--drivers`` step D):

* pings: every driver every 5 s over ``/ws/driver/`` (D / 5 per second);
* consoles: one dispatcher per 100 drivers (at least 2) on ``/ws/console/``, each
  receiving every position: ping -> console latency;
* orders: ``--orders-per-driver-hour`` (15: a driver's 120 stops in an 8-hour day), half
  as verified Shopify ``orders/create`` webhooks, half through ``POST /api/v1/orders/``
  with a partner's API key;
* completions: ``--stops-per-driver-hour`` (15), each the PWA's two requests: a camera
  photo (``--photo``, default 12 MP as the PWA's camera input sends it) to
  ``/api/v1/pod/media/``, then ``complete`` to ``/api/v1/driver/actions/``.

Each step opens its sockets, runs a few unmeasured seconds of the mixed load (``--settle``),
then the mixed load, then each kind alone at the same rate (the baseline: the cost of
mixing is the difference), with every socket open throughout. A step holds when,
mixed, every kind stays under its p99 threshold (``THRESHOLDS_MS``) with at most 1%
errors and no 5xx; the run stops at the first step that does not, and the knee is the
last step that held. CPU and memory (RSS) of every process come from /proc, sampled
through each window. After the run the bench checks that every accepted order was
stored once, every acknowledged completion completed its stop once with its photo, and
that nothing answered 5xx. The last line printed is the headline.

Needs PostgreSQL and Redis (defaults ``postgres://postgres@127.0.0.1:5432/lastmile_loadbench``
and ``redis://127.0.0.1:6379/10``; ``--database-url``, ``--redis-url``). Everything it
makes is in one organization of its own, removed at the end (also after an error,
Ctrl-C or SIGTERM), and every process it started is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import multiprocessing
import os
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load_clients import INTERVAL_S
from bench.load_processes import Drain, Meter, stop_processes

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lastmile_loadbench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
KINDS = ("ping", "fan-out", "webhook", "order API", "photo", "complete")
# A step holds while every kind's p99 stays under these (mixed), errors <= MAX_ERROR_RATE
# and no 5xx. Pings and fan-out: the live target of bench/realtime.py; webhooks: the
# inbound target (bench/inbound.py); the photo allows for a 12 MP decode and re-encode
# (~0.6 s of CPU alone, bench/pod_media.py) behind a few others.
THRESHOLDS_MS = {"ping": 250, "fan-out": 250, "webhook": 200, "order API": 500, "photo": 3000, "complete": 1000}
MAX_ERROR_RATE = 0.01
PHOTOS = {"12mp": (4000, 3000), "3mp": (2000, 1500), "1mp": (1280, 960)}
PHASES = ("mixed", "live", "webhook", "order API", "completion")  # each after "mixed" is one kind alone


@dataclass
class Step:
    drivers: int
    consoles: int
    rates: dict[str, float]  # HTTP arrivals per second: webhook, order API, completion

    def label(self) -> str:
        return (f"{self.drivers} drivers ({self.drivers / INTERVAL_S:.0f} pings/s), {self.consoles} consoles, "
                f"{self.rates['webhook'] + self.rates['order API']:.1f} orders/s, "
                f"{self.rates['completion']:.2f} completions/s")


def steps_for(drivers: list[int], orders_per_hour: float, stops_per_hour: float) -> list[Step]:
    return [Step(d, max(2, round(d / 100)), {"webhook": d * orders_per_hour / 3600 / 2,
                                             "order API": d * orders_per_hour / 3600 / 2,
                                             "completion": d * stops_per_hour / 3600}) for d in drivers]


# --- one phase ---------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    step: Step
    window: float
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage: dict[str, tuple[float, int]] = field(default_factory=dict)
    five_xx: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # what stopped the phase from running at all
    closed: list[str] = field(default_factory=list)
    load: float = 0.0

    def error_rate(self, kind: str) -> float:
        k = self.kinds[kind]
        return sum(k["errors"].values()) / k["sent"] if k["sent"] else 0.0

    def failures(self) -> list[str]:
        """Why this phase does not hold (nothing: it held)."""
        out = [f"{kind} p99 {k['p99']:.0f} ms > {THRESHOLDS_MS[kind]} ms" for kind, k in self.kinds.items()
               if not math.isnan(k["p99"]) and k["p99"] > THRESHOLDS_MS[kind]]
        out += [f"{kind} {self.error_rate(kind):.1%} errors ({', '.join(f'{r} x{n}' for r, n in k['errors'].items())})"
                for kind, k in self.kinds.items() if self.error_rate(kind) > MAX_ERROR_RATE]
        out += [f"{n} x {what}" for what, n in self.five_xx.items()]
        out += [kind + ": nothing measured" for kind, k in self.kinds.items() if k["sent"] and not k["n"]]
        return out + self.notes


class Runner:
    """Sends each phase to the client processes at one start time and samples /proc meanwhile."""

    def __init__(self, live: Any, http: Any, meter: Meter, args: argparse.Namespace) -> None:
        self.live, self.http, self.meter, self.args = live, http, meter, args
        self.accepted: dict[str, list[Any]] = {"webhooks": [], "shopify_orders": [], "api_orders": [], "completed": []}
        self.five_xx = 0

    def phase(self, name: str, step: Step, window: float) -> Phase:
        a = self.args
        t0 = time.time() + 0.5  # time for both client processes to hear of it
        live = name in ("mixed", "live")
        rates = step.rates if name == "mixed" else {name: step.rates[name]} if name in step.rates else {}
        if live:
            self.live.send(("run", t0, a.warmup, window, a.drain))
        if rates:
            self.http.send(("run", t0, a.warmup, window, rates))
        peak: dict[str, int] = {}
        time.sleep(max(0.0, t0 + a.warmup - time.time()))
        first = self.meter.sample()
        backends: dict[int, list[float]] = {}
        Meter.backends(first, backends, first=True)
        end = t0 + a.warmup + window
        while (left := end - time.time()) > 0:
            time.sleep(min(0.5, left))
            sample = self.meter.sample()
            Meter.peaks(sample, peak)
            Meter.backends(sample, backends)
        last = self.meter.sample()
        Meter.backends(last, backends)
        out = Phase(name, step, window, usage=Meter.usage(first, last, peak, backends), load=os.getloadavg()[0])
        timeout = a.drain + 4 * 60
        if live:
            answer = _answer(self.live, timeout, "live clients")
            out.kinds.update({k: answer[k] for k in ("ping", "fan-out")})
            out.closed = answer["closed"]
        if rates:
            answer = _answer(self.http, timeout, "HTTP clients")
            kinds = [k for k in ("webhook", "order API") if k in rates] + (["photo", "complete"]
                                                                            if "completion" in rates else [])
            out.kinds.update({k: answer[k] for k in kinds})
            out.five_xx.update(answer["five_xx"])
            self.five_xx += sum(answer["five_xx"].values())
            for key, values in answer["accepted"].items():
                self.accepted[key] += values
        return out


def _answer(conn: Any, timeout: float, who: str) -> dict[str, Any]:
    if not conn.poll(timeout):
        raise RuntimeError(f"the {who} did not answer within {timeout:.0f} s")
    answer = conn.recv()
    if "failed" in answer:
        raise RuntimeError(f"the {who} failed: {answer['failed']}")
    return answer


# --- the report ---------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def kind_table(mixed: Phase, alone: dict[str, Phase]) -> list[str]:
    lines = [f"  {'kind':<11}{'offered/s':>10} | {'mixed: ok/s':>11}{'p50':>7}{'p95':>7}{'p99':>7}{'err':>7} | "
             f"{'alone: ok/s':>11}{'p50':>7}{'p95':>7}{'p99':>7}{'err':>7} | {'p99 mixed/alone':>15}"]
    owner = {"ping": "live", "fan-out": "live", "webhook": "webhook", "order API": "order API",
             "photo": "completion", "complete": "completion"}
    for kind in KINDS:
        m = mixed.kinds.get(kind)
        a = alone.get(owner[kind])
        b = a.kinds.get(kind) if a else None
        if m is None:
            continue
        offered = m["sent"] / mixed.window
        row = (f"  {kind:<11}{offered:>10.1f} | {m['per_s']:>11.1f}{_ms(m['p50']):>7}{_ms(m['p95']):>7}"
               f"{_ms(m['p99']):>7}{mixed.error_rate(kind):>7.1%} | ")
        if b is not None:
            ratio = m["p99"] / b["p99"] if b["p99"] and not math.isnan(b["p99"]) else math.nan
            row += (f"{b['per_s']:>11.1f}{_ms(b['p50']):>7}{_ms(b['p95']):>7}{_ms(b['p99']):>7}"
                    f"{a.error_rate(kind):>7.1%} | {'-' if math.isnan(ratio) else f'{ratio:.2f}x':>15}")
        lines.append(row)
    return lines


def usage_table(phases: list[Phase]) -> list[str]:
    names = list(phases[0].usage)
    head = f"  {'CPU (1.0 = a core) / RSS MB':<38}" + "".join(f"{p.name:>16}" for p in phases)
    lines = [head]
    for name in names:
        cells = []
        for p in phases:
            cpu, mb = p.usage.get(name, (math.nan, 0))
            cells.append((f"{cpu:>8.0f}" if name.startswith("postgres connections") else f"{cpu:>8.2f}")
                         + (f" /{mb:>5}" if mb else "       "))
        lines.append(f"  {name:<38}" + "".join(f"{c:>16}" for c in cells))
    return lines


# --- the run ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one step of 200 drivers, short windows (under a minute)")
    parser.add_argument("--steps", help="driver counts, comma-separated (default 250,500,1000,2000; quick 200)")
    parser.add_argument("--orders-per-driver-hour", type=float, default=15.0)
    parser.add_argument("--stops-per-driver-hour", type=float, default=15.0)
    parser.add_argument("--photo", choices=sorted(PHOTOS), default="12mp", help="the camera photo of each completion")
    parser.add_argument("--asgi", type=int, default=2, help="Daphne processes")
    parser.add_argument("--workers", type=int, default=2, help="background worker processes")
    parser.add_argument("--warmup", type=float, help="seconds of load before each window (default 3; quick 1)")
    parser.add_argument("--window", type=float, help="measured seconds of the mixed load (default 30; quick 8)")
    parser.add_argument("--alone", type=float, help="measured seconds of each kind alone (default 15; quick 3)")
    parser.add_argument("--settle", type=float, help="seconds of unmeasured mixed load after the sockets open "
                                                     "(default 5; quick 3)")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds allowed for the last positions and acks")
    parser.add_argument("--routes-today", action="store_true",
                        help="date the completion routes today, so they are in every console's snapshot (see load_world)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for every server and worker (repeatable), e.g. DB_CONN_MAX_AGE=0")
    parser.add_argument("--keep-logs", metavar="DIR", help="save every server's and worker's output there")
    parser.add_argument("--all-steps", action="store_true", help="run every step even after one failed")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_LOAD_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_LOAD_REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)
    q = args.quick
    drivers = [int(v) for v in (args.steps or ("200" if q else "250,500,1000,2000")).split(",") if v.strip()]
    args.warmup = args.warmup if args.warmup is not None else (1.0 if q else 3.0)
    args.window = args.window or (8.0 if q else 30.0)
    args.alone = args.alone or (3.0 if q else 15.0)
    args.drain = min(args.drain, 5.0) if q else args.drain
    args.settle = args.settle if args.settle is not None else (3.0 if q else 5.0)
    steps = steps_for(drivers, args.orders_per_driver_hour, args.stops_per_driver_hour)
    # A terminated bench still stops its processes and removes its rows (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    need = 2 * (max(drivers) + max(s.consoles for s in steps)) + 512  # the balancer holds both ends
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    started = time.perf_counter()
    from bench.ingest import machine, setup_django

    setup_django(args.database_url)
    from bench import load_world as world_

    world_.cleanup()
    world_.raise_id_sequences()
    run_id = secrets.token_hex(3)
    # What a step's completion phases last, at most.
    per_step_s = args.warmup * 3 + args.settle + args.window + args.alone + 3
    stops = math.ceil(sum(s.rates["completion"] * per_step_s for s in steps) * 1.1) + 10
    try:
        world = world_.world_create(run_id, drivers=max(drivers), consoles=max(s.consoles for s in steps), stops=stops,
                                     routes_today=args.routes_today)
    except BaseException:
        world_.cleanup(run_id)
        raise
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}: run {run_id}; {args.asgi} Daphne + {args.workers} workers behind "
          f"the load balancer; world of {max(drivers)} drivers, {len(world.console_cookies)} dispatchers, "
          f"{len(world.stops)} stops on routes published for {'today' if args.routes_today else 'tomorrow'}, "
          f"made in {time.perf_counter() - started:.1f} s; "
          f"{args.photo} photos; servers: {' '.join(args.server_env) or 'project defaults'}; "
          f"windows: mixed {args.window:g} s, each kind alone {args.alone:g} s, "
          f"after {args.warmup:g} s of warm-up", flush=True)
    media = tempfile.mkdtemp(prefix="lastmile-load-media-")
    results: list[list[Phase]] = []
    problems: list[str] = []
    drains: list[Drain] = []
    children: list[Any] = []
    try:
        results, problems, drains = run(args, steps, world, media, children)
    finally:
        for proc in children:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        world_.cleanup(run_id, world.session_keys)
        shutil.rmtree(media, ignore_errors=True)
        gc.collect()  # the balancer's loop, stopped: its complaints print now, not after the headline
    report(args, results, problems, drains, started)


def run(args: argparse.Namespace, steps: list[Step], world: Any, media: str,
        children: list[Any]) -> tuple[list[list[Phase]], list[str], list[Drain]]:
    from bench import load_world as world_
    from bench.load_clients import http_main, live_main
    from bench.topology import topology

    results: list[list[Phase]] = []
    drains: list[Drain] = []
    env = {"MEDIA_ROOT": media, "MEDIA_STORAGE": "filesystem", **dict(v.split("=", 1) for v in args.server_env)}
    with topology(args.database_url, args.redis_url, asgi=args.asgi, workers=args.workers, extra_env=env) as running:
        try:
            if args.keep_logs:
                Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
            drains = [Drain(p.name, p.popen.stdout, args.keep_logs) for p in running.servers + running.worker_processes]
            # Spawned, not forked: this process has threads (the balancer) and open connections.
            context = multiprocessing.get_context("spawn")
            live_end, live_child = context.Pipe()
            http_end, http_child = context.Pipe()
            world_dict = asdict(world)
            children += [
                context.Process(target=live_main, name="live-clients", daemon=True,
                                args=(live_child, running.url, world.driver_ids, world.driver_cookies,
                                      world.console_cookies)),
                context.Process(target=http_main, name="http-clients", daemon=True,
                                args=(http_child, running.url, world_dict, PHOTOS[args.photo])),
            ]
            for child in children:
                child.start()
            processes = {p.name: p.popen.pid for p in running.servers + running.worker_processes}
            processes.update({"balancer (+ bench)": os.getpid(), "live clients": children[0].pid,
                              "http clients": children[1].pid})
            runner = Runner(live_end, http_end, Meter(processes, args.database_url.rsplit("/", 1)[1], args.redis_url),
                            args)
            for step in steps:
                world_.world_refresh(world)
                live_end.send(("connect", step.drivers, step.consoles))
                try:
                    connected = _answer(live_end, 300, "live clients")
                except RuntimeError as exc:
                    print(f"step: {step.label()}: {exc}", flush=True)
                    results.append([Phase("mixed", step, 0.0, load=os.getloadavg()[0],
                                          notes=[f"sockets could not all connect ({exc})"[:400]])])
                    break
                print(f"step: {step.label()}; sockets opened in {connected['seconds']:.1f} s"
                      + (f" ({connected['refused']} handshakes retried)" if connected["refused"] else ""), flush=True)
                # Unmeasured: every kind through every process once (imports, first queries,
                # the new sockets' snapshots), so the first measured phase is not charged for it.
                runner.phase("mixed", step, args.settle)
                phases = []
                for name in PHASES:
                    window = args.window if name == "mixed" else args.alone
                    phase = runner.phase(name, step, window)
                    phases.append(phase)
                    print(f"  {name:<11} done; load average {phase.load:.1f}"
                          + (f"; does not hold: {'; '.join(phase.failures())}" if phase.failures() else ""),
                          flush=True)
                results.append(phases)
                if phases[0].failures() and not args.all_steps:
                    break
            for end in (live_end, http_end):
                end.send(("close",))
                with contextlib.suppress(Exception):
                    _answer(end, 30, "clients")
            accepted = world_.Accepted(**runner.accepted, server_errors=runner.five_xx)
            problems = world_.verify(world, accepted, worker_timeout=60)
            print(f"checked: {len(accepted.webhooks)} webhooks and {len(accepted.api_orders)} API orders accepted, "
                  f"{len(accepted.completed)} stops completed: "
                  + ("every one stored once, no 5xx" if not problems else "; ".join(problems)), flush=True)
        finally:
            stop_processes(running, drains)
    return results, problems, drains


def report(args: argparse.Namespace, results: list[list[Phase]], problems: list[str], drains: list[Drain],
           started: float) -> None:
    print(f"total run time {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
    print(f"thresholds (p99 ms, mixed): {', '.join(f'{k} {v}' for k, v in THRESHOLDS_MS.items())}; "
          f"errors <= {MAX_ERROR_RATE:.0%}; no 5xx")
    for phases in results:
        mixed, alone = phases[0], {p.name: p for p in phases[1:]}
        print(f"\n{mixed.step.label()}: mixed {mixed.window:g} s, alone {phases[-1].window:g} s each, "
              f"load average {mixed.load:.1f}: {'held' if not mixed.failures() else 'did not hold'}")
        if mixed.failures():
            print(f"  why: {'; '.join(mixed.failures())}")
        if mixed.kinds:
            print("\n".join(kind_table(mixed, alone)))
            print("\n".join(usage_table(phases)))
        for reason in mixed.closed:
            print(f"  socket closed: {reason}")
        for phase in phases[:2]:
            fan = phase.kinds.get("fan-out", {})
            if fan.get("duplicates") or fan.get("finals lost"):
                print(f"  fan-out, {phase.name}: {fan['duplicates']} positions received again (timed once), "
                      f"{fan['finals lost']} final positions missing after the drain")
    for drain in drains:
        for key, count in drain.problems.most_common(3):
            print(f"{drain.name} logged x{count}: {key}")
        if drain.first_traceback:
            ours = [line.strip() for line in drain.first_traceback if line.strip().startswith('File "') and "/apps/" in line]
            end = next(i for i, line in enumerate(drain.first_traceback[1:], 1) if not line.startswith(" "))
            print("  the first, from: " + (ours[-1] if ours else drain.first_traceback[end - 2].strip()) + "\n    "
                  + "\n    ".join(drain.first_traceback[end:]))
    verdict = "correct" if not problems else "INCORRECT: " + "; ".join(problems)
    print(f"knee: {knee(results)}")
    print(headline(args, results, verdict))


def knee(results: list[list[Phase]]) -> str:
    held = [p[0] for p in results if not p[0].failures()]
    failed = next((p[0] for p in results if p[0].failures()), None)
    last = f"{held[-1].step.drivers} drivers" if held else "none (the first step already failed)"
    if failed is None:
        return f"not reached; every step held, the last at {last}"
    return f"last step that held: {last}; {failed.step.drivers} drivers did not ({'; '.join(failed.failures())})"


def headline(args: argparse.Namespace, results: list[list[Phase]], verdict: str) -> str:
    """The last step that held (or the first, if none did): each kind's p99 mixed and alone."""
    if not results:
        return f"load: no step completed; {verdict}"
    held = [p for p in results if not p[0].failures()]
    shown = held[-1] if held else results[0]
    mixed = shown[0]
    alone = {k: v for p in shown[1:] for k, v in p.kinds.items()}
    figures = " ".join(f"{kind}={_ms(mixed.kinds[kind]['p99'])}/{_ms(alone[kind]['p99']) if kind in alone else '-'}"
                       for kind in KINDS if kind in mixed.kinds)
    if not held:
        where = f"knee below {results[0][0].step.drivers} drivers"
    elif held[-1] is results[-1]:
        where = f"every step held (knee above {held[-1][0].step.drivers} drivers)"
    else:
        where = f"knee: {held[-1][0].step.drivers} drivers held, {results[len(held)][0].step.drivers} did not"
    return (f"load{' (quick)' if args.quick else ''}: {mixed.step.drivers} drivers, p99 ms mixed/alone {figures}; "
            f"{where}; {args.asgi} daphne + {args.workers} workers, {args.photo} photos"
            f"{''.join(', ' + v for v in args.server_env)}; {verdict}; "
            f"load avg {mixed.load:.1f}")


if __name__ == "__main__":
    main()
