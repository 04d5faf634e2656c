"""The processes of ``bench/load.py``: their CPU and memory from /proc while it runs,
their output read as it comes, and their stopping."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc ------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[float, int]:
    """CPU seconds (utime + stime, all threads) and RSS in KB of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _private_kb(pid: int) -> int:
    """RssAnon: a PostgreSQL backend's own memory, without the shared buffers every backend maps."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


class Meter:
    """Samples every process of the topology, the bench's own and the machine, from /proc
    (Redis through INFO: it may run as another user)."""

    def __init__(self, processes: dict[str, int], dbname: str, redis_url: str) -> None:
        self.processes, self.dbname, self.redis_url = processes, dbname, redis_url

    def _postgres(self) -> dict[int, tuple[float, int]]:
        needle = f" {self.dbname} ".encode()
        out = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (title := (entry / "cmdline").read_bytes()).startswith(b"postgres: ") and needle in title:
                        out[int(entry.name)] = (_stat(int(entry.name))[0], _private_kb(int(entry.name)))
        return out

    def _redis(self) -> tuple[float, int]:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            cpu, memory = client.info("cpu"), client.info("memory")
            return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), int(memory["used_memory_rss"]) // 1024
        finally:
            client.close()

    def sample(self) -> dict[str, Any]:
        procs = {}
        for name, pid in self.processes.items():
            with contextlib.suppress(OSError):
                procs[name] = _stat(pid)
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return {"t": time.monotonic(), "procs": procs, "postgres": self._postgres(), "redis": self._redis(),
                "machine": (sum(values) - values[3] - values[4], sum(values))}

    @staticmethod
    def usage(a: dict[str, Any], b: dict[str, Any], peak_kb: dict[str, int],
              backends: dict[int, list[float]]) -> dict[str, tuple[float, int]]:
        """Each party's CPU (1.0 = one core busy) between a and b, and its largest RSS in MB.
        ``backends``: each PostgreSQL backend's CPU when first and last seen in the window
        (one that came and went between two samples is missed)."""
        span = b["t"] - a["t"]
        out = {name: ((cpu - a["procs"].get(name, (cpu, 0))[0]) / span, max(kb, peak_kb.get(name, 0)) // 1024)
               for name, (cpu, kb) in b["procs"].items()}
        pg_cpu = sum(last - first for first, last in backends.values())
        out["postgres backends (private RSS)"] = (
            pg_cpu / span, max(sum(kb for _, kb in b["postgres"].values()), peak_kb.get("postgres", 0)) // 1024)
        out["postgres connections (peak count)"] = (float(max(len(b["postgres"]), peak_kb.get("connections", 0))), 0)
        out["redis (whole server)"] = ((b["redis"][0] - a["redis"][0]) / span, b["redis"][1] // 1024)
        busy = (b["machine"][0] - a["machine"][0]) / max(1, b["machine"][1] - a["machine"][1])
        out["machine"] = (busy * (os.cpu_count() or 1), 0)
        return out

    @staticmethod
    def backends(sample: dict[str, Any], seen: dict[int, list[float]], *, first: bool = False) -> None:
        for pid, (cpu, _) in sample["postgres"].items():
            # A backend born inside the window: all its CPU is the window's.
            seen.setdefault(pid, [cpu if first else 0.0, cpu])[1] = cpu

    @staticmethod
    def peaks(sample: dict[str, Any], into: dict[str, int]) -> None:
        for name, (_, kb) in sample["procs"].items():
            into[name] = max(into.get(name, 0), kb)
        into["postgres"] = max(into.get("postgres", 0), sum(kb for _, kb in sample["postgres"].values()))
        into["connections"] = max(into.get("connections", 0), len(sample["postgres"]))


# --- the topology's output ----------------------------------------------------------------


class Drain:
    """Reads a process's output as it comes (an unread pipe fills and then blocks the
    process on its next log line), keeping the end and counting problems."""

    def __init__(self, name: str, stream: Any, keep: str | None = None) -> None:
        self.name, self.stream = name, stream
        self.keep = open(Path(keep) / f"{name}.log", "w") if keep else None  # noqa: SIM115 - closed by _run
        self.problems: Counter[str] = Counter()
        self.first_traceback: list[str] = []
        self.thread = threading.Thread(target=self._run, name=f"drain-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        current: list[str] = []  # the traceback being read
        state = ""  # "frames" inside one, "after" past its exception line (PostgreSQL's DETAIL may follow)
        with contextlib.suppress(ValueError, OSError), self.keep or contextlib.nullcontext():
            for raw in self.stream:
                if self.keep:
                    self.keep.write(raw)
                line = raw.rstrip()
                if line.startswith("Traceback"):
                    if state == "after":
                        self._raised(current)
                    current, state = [line], "frames"
                elif state == "frames":
                    current.append(line)
                    state = "frames" if line.startswith(" ") else "after"
                elif state == "after" and line.startswith(("DETAIL:", "Process ", "HINT:", "CONTEXT:")):
                    current.append(line)
                elif state == "after":
                    self._raised(current)
                    state = ""
                for level in (" ERROR ", " CRITICAL "):
                    if level in line:
                        self.problems["".join("#" if c.isdigit() else c for c in line.split(level, 1)[1][:100])] += 1
            if state == "after":
                self._raised(current)

    def _raised(self, traceback: list[str]) -> None:
        exception = next(line for line in traceback[1:] if not line.startswith(" "))
        if exception.startswith("autobahn.exception.Disconnected"):
            return  # a heartbeat to a socket the client just closed: the end of the run, not a fault
        self.problems["raised " + exception[:100]] += 1
        if not self.first_traceback:
            self.first_traceback = traceback


def stop_processes(running: Any, drains: list[Drain]) -> None:
    """SIGTERM every server and worker (each stores what it holds on a clean exit), wait,
    then SIGKILL what is left; the drains then reach the end of each output."""
    processes = running.servers + running.worker_processes
    for process in processes:
        if process.alive():
            process.popen.terminate()
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.popen.wait(max(0.1, deadline - time.monotonic()))
        except Exception:
            process.popen.kill()
            process.popen.wait(5)
    for drain in drains:
        drain.thread.join(5)
