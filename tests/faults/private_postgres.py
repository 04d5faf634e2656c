"""A PostgreSQL server of the test's own: initdb in a temporary folder, a free loopback
port, trust auth. Stopping it disturbs no other test or developer (services.md asks
fault tests to leave the shared servers alone)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.realtime.servers import free_port


def postgres_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = postgres_bin()
        assert self.bin is not None, "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        self.port = free_port()
        # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.workdir = Path(tempfile.mkdtemp(prefix="lastmile-pg-"))
        self.data = self.workdir / "pgdata"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/lastmile"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; CI and these machines run as root.
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        result = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        assert result.returncode == 0, result.stderr
        self.start()
        result = self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "lastmile")
        assert result.returncode == 0, result.stderr

    def start(self) -> None:
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.workdir / "postgres.log"), "-w",
                           "-o", f"-h 127.0.0.1 -p {self.port} -k {self.workdir} -c fsync=off", "start")
        assert result.returncode == 0, result.stderr + result.stdout

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def wait_until_down(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port)).returncode != 0:
                return
            time.sleep(0.1)
        raise AssertionError("PostgreSQL did not stop")
