"""Real ASGI server processes for multi-process tests: Daphne on loopback, sharing the
test database and Redis, as production runs several behind a load balancer."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Server:
    port: int
    process: subprocess.Popen

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@contextlib.contextmanager
def asgi_servers(count: int, *, env: dict[str, str] | None = None) -> Iterator[list[Server]]:
    """Start ``count`` Daphne processes on the test database; stop them afterwards."""
    base = {k: v for k, v in os.environ.items() if k not in ("LASTMILE_INPROCESS_WORKER",)}
    base.update({"DATABASE_URL": database_url(), "DEBUG": "false", "REALTIME_HEARTBEAT_S": "1",
                 "PYTHONUNBUFFERED": "1", **(env or {})})
    servers = []
    try:
        for _ in range(count):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                cwd=ROOT, env=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            servers.append(Server(port=port, process=process))
        for server in servers:
            _wait_until_up(server)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                output, _ = server.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                output, _ = server.process.communicate()
            if "Traceback" in (output or ""):
                # Surface server-side errors in the test's report, not only as a 500.
                print(f"--- daphne on port {server.port} ---\n{output}")


def _wait_until_up(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited: {server.process.stdout.read() if server.process.stdout else ''}")
        try:
            with urllib.request.urlopen(f"{server.http}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("daphne did not start in time")


def session_cookie(user: Any) -> str:
    """A logged-in session for ``user``, as the browser would hold after the login form."""
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def post_json(url: str, body: dict[str, Any], *, api_key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
