"""A driver's connection to the server, as the PWA makes it: the I/O of the simulator.

HTTP: the Django login form, then the JSON API with the session cookie and the CSRF
token in X-CSRFToken (DRF's SessionAuthentication checks it on every unsafe request).
Stdlib urllib, run in a thread so the fleet's event loop never blocks on it.

WebSocket: /ws/driver/ with the session cookie and an Origin naming the server (the
handshake is refused otherwise). On every (re)connect: wait for ``welcome``, say
``hello`` with the last sequence applied, then send the pings buffered while offline
as one ``pings`` batch. The socket counts as dead after 2.5 silent heartbeat
intervals, as docs/realtime.md tells clients; reconnects back off exponentially.
"""

# ruff: noqa: S311  (reconnect jitter: seeded simulation randomness, not security)
from __future__ import annotations

import asyncio
import json
import random
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

LOGIN_PATH = "/accounts/login/"
DRIVER_SOCKET_PATH = "/ws/driver/"
# Close codes of docs/realtime.md.
NOT_LOGGED_IN, FORBIDDEN, REVOKED = 4401, 4403, 4408
# A socket that stayed up this long was healthy; one that drops sooner keeps backing off,
# so a server that accepts and then fails every connection is not hammered.
HEALTHY_AFTER_S = 10.0


class ServerUnreachable(Exception):
    pass


class LoginFailed(Exception):
    pass


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.status, self.body = status, body
        detail = body.get("message") or body.get("detail") if isinstance(body, dict) else body
        super().__init__(f"{method} {path} answered {status}: {detail}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A successful login answers 302; we want to see that, not follow it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpSession:
    """One user's cookies and the calls they make. Blocking methods end in ``_sync``."""

    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected a server URL like http://127.0.0.1:8000, got {base_url!r}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.socket_origin = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        self.timeout = timeout
        self.jar = CookieJar()
        # No proxies: the simulator talks to the server it was pointed at.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                   urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def _open(self, path: str, *, method: str = "GET", data: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        # Always our http(s) origin, checked in __init__: never a file: or custom scheme.
        request = urllib.request.Request(self.origin + path, data=data, method=method, headers=headers or {})  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            raise ServerUnreachable(f"{self.origin} is not answering ({getattr(error, 'reason', error)})") from error

    def login_sync(self, username: str, password: str) -> None:
        self._open(LOGIN_PATH)  # sets the csrftoken cookie
        token = self.cookie("csrftoken")
        if token is None:
            raise LoginFailed(f"{self.origin}{LOGIN_PATH} set no csrftoken cookie")
        form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        status, _ = self._open(LOGIN_PATH, method="POST", data=form.encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded", "Referer": self.origin + LOGIN_PATH,
            "Origin": self.origin})
        # LoginView redirects on success and shows the form again (200) on bad credentials.
        if status != 302:
            raise LoginFailed(f"could not log in as {username} (HTTP {status}); check the username and password")

    def request_sync(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json", "Origin": self.origin}
        data = None
        if method != "GET":
            headers["X-CSRFToken"] = self.cookie("csrftoken") or ""
            headers["Content-Type"] = "application/json"
            data = json.dumps(body if body is not None else {}).encode()
        status, raw = self._open(path, method=method, data=data, headers=headers)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw[:200].decode(errors="replace")
        if status >= 400:
            raise ApiError(method, path, status, payload)
        return payload

    def upload_sync(self, path: str, *, fields: dict[str, str], file_field: str, filename: str, data: bytes,
                    content_type: str) -> Any:
        """A multipart/form-data POST with one file, as the browser's FormData sends it."""
        boundary = f"----lastmile{uuid.uuid4().hex}"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                 for name, value in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                     f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers = {"Accept": "application/json", "Origin": self.origin, "X-CSRFToken": self.cookie("csrftoken") or "",
                   "Content-Type": f"multipart/form-data; boundary={boundary}"}
        status, raw = self._open(path, method="POST", data=body, headers=headers)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw[:200].decode(errors="replace")
        if status >= 400:
            raise ApiError("POST", path, status, payload)
        return payload

    async def upload(self, path: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.upload_sync, path, **kwargs)

    async def login(self, username: str, password: str) -> None:
        await asyncio.to_thread(self.login_sync, username, password)

    async def get(self, path: str) -> Any:
        return await asyncio.to_thread(self.request_sync, "GET", path)

    async def post(self, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self.request_sync, "POST", path, body)


@dataclass
class SocketStats:
    sent: int = 0  # pings written to an open socket, singly or in a batch
    acked: int = 0  # pings the server answered for
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    flagged: int = 0
    batches: int = 0  # backlogs sent after a reconnect
    connects: int = 0
    dropped: int = 0  # buffered pings discarded because the buffer was full


class DriverSocket:
    """The driver's live socket: reconnects, resyncs and forwards pings until closed."""

    def __init__(self, session: HttpSession, *, log: Callable[[str], None],
                 relogin: Callable[[], Awaitable[None]], rng: random.Random | None = None,
                 first_backoff_s: float = 0.5, max_backoff_s: float = 10.0, buffer_limit: int = 2000) -> None:
        self.session, self.log, self.relogin = session, log, relogin
        self.rng = rng or random.Random()
        self.first_backoff_s, self.max_backoff_s = first_backoff_s, max_backoff_s
        self.buffer: deque[dict[str, Any]] = deque(maxlen=buffer_limit)
        self.last_seq = 0
        self.stats = SocketStats()
        self.fatal: str | None = None
        self._ws: ClientConnection | None = None
        self._closing = False
        self._acked = asyncio.Condition()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def run(self) -> None:
        failures = 0
        while not self._closing:
            reason, code = "", None
            opened = asyncio.get_running_loop().time()
            try:
                async with connect(self.session.socket_origin + DRIVER_SOCKET_PATH, origin=self.session.origin,
                                   additional_headers={"Cookie": self.session.cookie_header()},
                                   proxy=None, open_timeout=10, close_timeout=2) as ws:
                    await self._serve(ws)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                reason = f"closed with code {code}" if code else "connection lost"
                if asyncio.get_running_loop().time() - opened > HEALTHY_AFTER_S:
                    failures = 0  # it had been up a while: a fresh outage, back off from the start
            except InvalidStatus as exc:
                reason = f"handshake refused with HTTP {exc.response.status_code}"
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                reason = f"cannot connect ({exc or type(exc).__name__})"
            finally:
                self._ws = None
            if self._closing:
                return
            if code in (FORBIDDEN, REVOKED):
                self.fatal = f"the server closed the driver socket with {code}; not reconnecting"
                self.log(self.fatal)
                return
            if code == NOT_LOGGED_IN:
                try:
                    await self.relogin()
                except Exception as exc:  # the reconnect loop below retries
                    reason += f"; logging in again failed: {exc}"
            delay = min(self.max_backoff_s, self.first_backoff_s * 2 ** failures) * self.rng.uniform(0.5, 1.0)
            failures += 1
            self.log(f"socket {reason}; reconnecting in {delay:.1f} s, buffering pings")
            await asyncio.sleep(delay)

    async def _serve(self, ws: ClientConnection) -> None:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        if welcome.get("type") != "welcome":
            raise ConnectionClosed(None, None)
        silence_s = 2.5 * float(welcome.get("heartbeat_s") or 10)
        await ws.send(json.dumps({"type": "hello", "last_seq": self.last_seq}))
        self.stats.connects += 1
        if self.buffer:
            backlog = list(self.buffer)
            self.buffer.clear()
            await ws.send(json.dumps({"type": "pings", "pings": backlog}))
            self.stats.sent += len(backlog)
            self.stats.batches += 1
            self.log(f"back online; sent {len(backlog)} buffered pings in one batch")
        self._ws = ws
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=silence_s)
            except TimeoutError:
                # No heartbeat for 2.5 intervals: the connection is dead even if TCP says not.
                await ws.close(code=1001, reason="no heartbeat")
                raise ConnectionClosed(None, None) from None
            await self._receive(json.loads(raw))

    async def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "snapshot":
            self.last_seq = int(message["seq"])
        elif kind == "events":
            seqs = [e["seq"] for e in message.get("events", [])]
            if seqs:
                self.last_seq = max(self.last_seq, *seqs)
        elif kind == "pings.ack":
            rejected = message.get("rejected") or []
            s = self.stats
            s.accepted += int(message.get("accepted", 0))
            s.duplicates += int(message.get("duplicates", 0))
            s.rejected += len(rejected)
            s.flagged += int(message.get("flagged", 0))
            s.acked += int(message.get("accepted", 0)) + int(message.get("duplicates", 0)) + len(rejected)
            if rejected:
                self.log(f"server rejected {len(rejected)} ping(s): {rejected[:3]}")
            async with self._acked:
                self._acked.notify_all()
        elif kind == "revoked":
            self.log(f"access revoked: {message.get('message', '')}")
        elif kind == "error":
            self.log(f"server error message: {message.get('code')}: {message.get('message')}")

    async def send_ping(self, ping: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None:
            if len(self.buffer) == self.buffer.maxlen:
                self.stats.dropped += 1
            self.buffer.append(ping)
            return
        try:
            await ws.send(json.dumps({"type": "ping", **ping}))
            self.stats.sent += 1
        except ConnectionClosed:
            self.buffer.append(ping)

    async def drain(self, timeout: float) -> bool:
        """Wait until the server has answered for every ping sent, or ``timeout``."""
        try:
            async with asyncio.timeout(timeout), self._acked:
                await self._acked.wait_for(lambda: self.stats.acked >= self.stats.sent and not self.buffer)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
