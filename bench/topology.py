"""Production's shape on one machine: a load balancer, several Daphne processes and
several leased background workers, sharing PostgreSQL and Redis on loopback.

    .venv/bin/python -m bench.topology                 # 2 ASGI + 2 workers behind :8000, until Ctrl-C
    .venv/bin/python -m bench.topology --asgi 3 --workers 1 --port 8080

The fault tests (tests/faults/) and ``bench/load.py`` use ``Topology`` directly. The load
balancer is a TCP round-robin proxy (WebSockets pass through unchanged) that skips a
backend it cannot connect to, as HAProxy or an ALB does once its health check fails.
Every process writes its metrics to one ``PROMETHEUS_MULTIPROC_DIR``, so ``/metrics``
on any of them describes the whole host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lastmile_topology"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoadBalancer:
    """Round-robin TCP proxy on its own thread and event loop."""

    def __init__(self, backends: list[int], port: int = 0) -> None:
        self.backends = list(backends)
        self.port = port or free_port()
        self._cycle = itertools.cycle(range(len(self.backends)))
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-balancer", daemon=True)
        self.connections: dict[int, int] = dict.fromkeys(self.backends, 0)  # ever proxied
        self.open: dict[int, int] = dict.fromkeys(self.backends, 0)  # proxied now

    def start(self) -> LoadBalancer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            # Cancel the open pipes first: a loop stopped under them logs each as destroyed.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self._loop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in range(len(self.backends)):
            port = self.backends[next(self._cycle)]
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
                self.connections[port] += 1
                break
            except OSError:
                continue  # that process is down: try the next, as a health-checked LB would
            except TimeoutError:
                continue
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        self.open[port] += 1
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the balancer is stopping: end quietly (asyncio logs a cancelled connection task)
        finally:
            self.open[port] -= 1


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    port: int | None = None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash or an OOM kill."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Topology:
    database_url: str
    redis_url: str
    asgi: int = 2
    workers: int = 2
    port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: list[Process] = field(default_factory=list)
    worker_processes: list[Process] = field(default_factory=list)
    balancer: LoadBalancer | None = None
    metrics_dir: str = ""

    @property
    def url(self) -> str:
        assert self.balancer is not None
        return f"http://127.0.0.1:{self.balancer.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("LASTMILE_INPROCESS_WORKER", "LASTMILE_TEST_DB")}
        env.update(DATABASE_URL=self.database_url, REDIS_URL=self.redis_url, DJANGO_SETTINGS_MODULE="config.settings",
                   DEBUG="false", PYTHONUNBUFFERED="1", PROMETHEUS_MULTIPROC_DIR=self.metrics_dir, **self.extra_env)
        return env

    def start(self) -> Topology:
        self.metrics_dir = tempfile.mkdtemp(prefix="lastmile-metrics-")
        for n in range(self.asgi):
            self.start_server(n)
        for server in self.servers:
            _wait_up(server)
        for n in range(self.workers):
            self.start_worker(n)
        self.balancer = LoadBalancer([s.port for s in self.servers if s.port], self.port).start()
        return self

    def start_server(self, n: int) -> Process:
        port = free_port()
        popen = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=BASE_DIR, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        process = Process(name=f"asgi-{n}", popen=popen, port=port)
        self.servers.append(process)
        return process

    def start_worker(self, n: int) -> Process:
        popen = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--queue-name", "*", "--interval", "0.2", "--no-reload",
             "--worker-id", f"topology-worker-{n}-{os.getpid()}"],
            cwd=BASE_DIR, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        process = Process(name=f"worker-{n}", popen=popen)
        self.worker_processes.append(process)
        return process

    def stop(self) -> dict[str, str]:
        """Stop everything; return each process's output (for a failing test's report)."""
        if self.balancer:
            self.balancer.stop()
        outputs = {}
        for process in self.servers + self.worker_processes:
            if process.alive():
                process.popen.terminate()
        for process in self.servers + self.worker_processes:
            try:
                out, _ = process.popen.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                out, _ = process.popen.communicate()
            except ValueError:
                out = ""
            outputs[process.name] = out or ""
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return outputs


def _wait_up(server: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited: {server.popen.stdout.read() if server.popen.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not start in time")


@contextlib.contextmanager
def topology(database_url: str, redis_url: str, **options) -> Iterator[Topology]:
    running = Topology(database_url=database_url, redis_url=redis_url, **options)
    try:
        yield running.start()
    finally:
        outputs = running.stop()
        for name, out in outputs.items():
            if "Traceback" in out:
                print(f"--- {name} ---\n{out[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000, help="the load balancer's port")
    parser.add_argument("--asgi", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args()

    from bench.ingest import ensure_database

    ensure_database(args.database_url)
    env = {**os.environ, "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=BASE_DIR, env=env, check=True)
    with topology(args.database_url, args.redis_url, asgi=args.asgi, workers=args.workers, port=args.port) as running:
        print(f"Lastmile on {running.url}/ : {args.asgi} Daphne processes "
              f"({', '.join(str(s.port) for s in running.servers)}), {args.workers} workers, "
              f"PostgreSQL {args.database_url}, Redis {args.redis_url}. Ctrl-C stops.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while all(p.alive() for p in running.servers + running.worker_processes):
                time.sleep(1)


if __name__ == "__main__":
    main()
