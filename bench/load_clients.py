"""The clients of ``bench/load.py``, each kind in a process of its own so that neither
the load balancer (in the bench's main process) nor another kind competes with it for
a GIL:

* ``live``: drivers' phones on ``/ws/driver/`` pinging every 5 s and dispatchers'
  consoles on ``/ws/console/`` (asyncio + websockets; the client code of
  bench/realtime.py). Latencies: ping -> ``pings.ack`` on the phone, and ping ->
  position on every console (device time to receive time; one machine, one clock).
* ``http``: partners and drivers over HTTP, open loop (arrivals on a fixed schedule,
  whatever the answers; latency counts from the scheduled time, so a server that falls
  behind is charged for the queue it causes): verified Shopify ``orders/create``
  webhooks, ``POST /api/v1/orders/`` with a partner's API key, and stop completions as
  the driver PWA sends them (the photo to ``/api/v1/pod/media/``, then the
  ``complete`` action to ``/api/v1/driver/actions/``, with the session cookie and CSRF
  token). Threads with keep-alive ``http.client`` connections.

Each process obeys commands from the bench over a pipe and answers with summaries;
it exits when the pipe closes (the bench ended, however it ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import math
import resource
import secrets
import signal
import threading
import time
import uuid
from array import array
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bench.realtime import Console as RealtimeConsole

INTERVAL_S = 5.0  # a driver's ping interval (the PWA's foreground rate)
CONNECT_CONCURRENCY = 32  # handshakes in flight at once (a reconnect storm, throttled)
REQUEST_TIMEOUT_S = 60.0


def percentile(values: list[float] | array, q: float) -> float:
    """Nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(latencies_ms: list[float] | array, *, sent: int, ok: int, errors: Counter, seconds: float) -> dict[str, Any]:
    """One kind's figures in one window. ``errors`` counts what went wrong by reason."""
    return {"sent": sent, "ok": ok, "per_s": ok / seconds if seconds else 0.0, "errors": dict(errors),
            "n": len(latencies_ms), "p50": percentile(latencies_ms, 0.5), "p95": percentile(latencies_ms, 0.95),
            "p99": percentile(latencies_ms, 0.99), "max": max(latencies_ms) if latencies_ms else math.nan}


def _serve(conn: Any, handle: Any) -> None:
    """The command loop: the bench's Ctrl-C is for the bench (which then tells us to stop)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    while True:
        try:
            command, *params = conn.recv()
        except (EOFError, OSError):
            return  # the bench is gone
        try:
            answer = handle(command, *params)
        except Exception as exc:  # the bench reports it; the process stays up for "close"
            answer = {"failed": f"{type(exc).__name__}: {exc}"[:500]}
        conn.send(answer)
        if command == "close":
            return


# --- live: drivers and consoles ------------------------------------------------------


def live_main(conn: Any, base_url: str, driver_ids: list[int], driver_cookies: list[str],
              console_cookies: list[str]) -> None:
    loop = asyncio.new_event_loop()
    live = Live(base_url, driver_ids, driver_cookies, console_cookies)
    _serve(conn, lambda command, *params: loop.run_until_complete(live.handle(command, *params)))


class Live:
    def __init__(self, base_url: str, driver_ids: list[int], driver_cookies: list[str],
                 console_cookies: list[str]) -> None:
        netloc = urlsplit(base_url).netloc
        self.ws_base, self.origin = f"ws://{netloc}", f"http://{netloc}"
        self.driver_ids, self.driver_cookies, self.console_cookies = driver_ids, driver_cookies, console_cookies
        self.drivers: list[Any] = []
        self.consoles: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.closed: list[str] = []
        self.refused: list[str] = []

    async def handle(self, command: str, *params: Any) -> dict[str, Any]:
        if command == "connect":
            return await self.connect(*params)
        if command == "run":
            return await self.run(*params)
        if command == "close":
            for task in self.readers:
                task.cancel()
            await asyncio.gather(*(_close(c.ws) for c in self.drivers + self.consoles))
            return {}
        raise ValueError(f"unknown command {command}")

    async def connect(self, drivers: int, consoles: int) -> dict[str, Any]:
        """Open sockets up to ``drivers`` and ``consoles`` (the ones open stay open)."""
        from bench.realtime import BERLIN, Driver, _read

        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        started = time.perf_counter()

        async def driver(i: int) -> Any:
            ws = await _connect(f"{self.ws_base}/ws/driver/", self.driver_cookies[i], self.origin, gate, self.refused)
            lat = BERLIN[0] + (BERLIN[1] - BERLIN[0]) * ((i * 7919) % 1000) / 1000
            lng = BERLIN[2] + (BERLIN[3] - BERLIN[2]) * ((i * 104729) % 1000) / 1000
            return Driver(self.driver_ids[i], ws, lat, lng)

        async def console(j: int) -> Any:
            return Console(await _connect(f"{self.ws_base}/ws/console/", self.console_cookies[j], self.origin, gate,
                                       self.refused))

        new_drivers = await asyncio.gather(*(driver(i) for i in range(len(self.drivers), drivers)))
        new_consoles = await asyncio.gather(*(console(j) for j in range(len(self.consoles), consoles)))
        for client in [*new_drivers, *new_consoles]:
            self.readers.append(asyncio.create_task(_read(client.ws, client, self.closed)))
        self.drivers += new_drivers
        self.consoles += new_consoles
        return {"seconds": time.perf_counter() - started, "refused": len(self.refused)}

    async def run(self, t0: float, warmup: float, window: float, drain: float) -> dict[str, Any]:
        """Every driver pings every INTERVAL_S, staggered, from ``t0``; what was sent in
        [t0 + warmup, t0 + warmup + window) is counted. Afterwards every console must
        hold every driver's final position within ``drain`` seconds."""
        closed_before = len(self.closed)
        span = (t0 + warmup, t0 + warmup + window)
        for console in self.consoles:
            console.window, console.latency_ms, console.received = span, array("d"), 0
            console.seen, console.duplicates = set(), 0
        count_from = time.perf_counter() + (span[0] - time.time())
        for driver in self.drivers:
            driver.count_acks_from, driver.ack_ms, driver.rejected = count_from, array("d"), 0

        async def drive(i: int, driver: Any) -> int:
            at, counted = t0 + INTERVAL_S * i / len(self.drivers), 0
            while at < span[1]:
                await asyncio.sleep(max(0.0, at - time.time()))
                sent = await driver.ping()
                counted += span[0] <= sent < span[1]
                at += INTERVAL_S
            return counted

        sent = sum(await asyncio.gather(*(drive(i, d) for i, d in enumerate(self.drivers))))
        finals = {d.driver_id: _ts(d.last_at) for d in self.drivers if d.last_at}
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            if all(not d.sent_at for d in self.drivers) and all(
                    c.latest.get(k) == v for c in self.consoles for k, v in finals.items()):
                break
            await asyncio.sleep(0.1)
        ack_ms = array("d", (v for d in self.drivers for v in d.ack_ms))
        unacked = sum(len(d.sent_at) for d in self.drivers)
        for driver in self.drivers:
            driver.sent_at.clear()  # owed acks are counted once, here
        rejected = sum(d.rejected for d in self.drivers)
        closed = self.closed[closed_before:]
        lost = sum(1 for c in self.consoles for k, v in finals.items() if c.latest.get(k) != v)
        ping_errors = Counter({"no ack": unacked, "rejected": rejected, "socket closed": len(closed)})
        expected = sent * len(self.consoles)
        received = sum(c.received for c in self.consoles)
        fan_errors = Counter({"not delivered": max(0, expected - received)})
        latency = array("d", (v for c in self.consoles for v in c.latency_ms))
        for console in self.consoles:
            console.window = (math.inf, math.inf)
        return {
            "ping": summary(ack_ms, sent=sent, ok=len(ack_ms), errors=+ping_errors, seconds=window),
            "fan-out": {**summary(latency, sent=expected, ok=received, errors=+fan_errors, seconds=window),
                        "finals lost": lost, "duplicates": sum(c.duplicates for c in self.consoles)},
            "closed": sorted(set(closed))[:3],
        }


class Console(RealtimeConsole):
    """bench/realtime.py's console, timing each position's first arrival only: a
    position sent again (a resync after a gap, under load) is counted apart, not as a
    second, later delivery."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.seen: set[tuple[int, float]] = set()
        self.duplicates = 0

    def on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") != "positions":
            return
        now = time.time()
        start, end = self.window
        for position in message["positions"]:
            driver, at = position["driver_id"], _ts(position["at"])
            if at > self.latest.get(driver, 0.0):
                self.latest[driver] = at
            if start <= at < end:
                if (driver, at) in self.seen:
                    self.duplicates += 1
                    continue
                self.seen.add((driver, at))
                self.received += 1
                self.latency_ms.append((now - at) * 1000)


async def _connect(url: str, cookie: str, origin: str, gate: asyncio.Semaphore, refused: list[str]) -> Any:
    """bench/realtime.py's handshake (welcome, hello, snapshot; refusals retried), also
    retrying a connection closed before any answer: the load balancer gives up on a
    backend that does not accept within 2 s, and the PWA (frontend/common/live.js) then
    tries again after 1 s, doubling, as it does after any failure."""
    import websockets

    from bench.realtime import _open

    delay, deadline = 1.0, time.monotonic() + 120
    while True:
        try:
            return await _open(url, cookie, origin, gate, refused)
        except websockets.InvalidMessage as exc:
            if time.monotonic() + delay > deadline:
                raise
            refused.append(f"{type(exc).__name__}: {exc}"[:100])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def _close(ws: Any) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await ws.close()


# --- http: partners' orders and drivers' completions ------------------------------------


def http_main(conn: Any, base_url: str, world: dict[str, Any], photo_size: tuple[int, int]) -> None:
    from bench.load_world import camera_jpeg, shopify_template

    clients = Http(base_url, world, camera_jpeg(*photo_size), shopify_template())
    _serve(conn, clients.handle)


class Http:
    POOL = {"webhook": 16, "order API": 16, "completion": 32}

    def __init__(self, base_url: str, world: dict[str, Any], photo: bytes, template: dict[str, Any]) -> None:
        from bench.ingest import make_orders

        parts = urlsplit(base_url)
        self.host, self.port, self.origin = parts.hostname, parts.port, f"http://{parts.netloc}"
        self.world, self.photo, self.template = world, photo, template
        self.orders = make_orders(2000, run_id=f"api-{world['run_id']}")
        self.next = Counter()  # per kind: the next item to send (never the same twice)
        self.local = threading.local()
        self.pools = {kind: ThreadPoolExecutor(size, thread_name_prefix=kind) for kind, size in self.POOL.items()}

    def handle(self, command: str, *params: Any) -> dict[str, Any]:
        if command == "run":
            return self.run(*params)
        if command == "close":
            for pool in self.pools.values():
                pool.shutdown(wait=False, cancel_futures=True)
            return {}
        raise ValueError(f"unknown command {command}")

    # -- the schedule

    def run(self, t0: float, warmup: float, window: float, rates: dict[str, float]) -> dict[str, Any]:
        span = (t0 + warmup, t0 + warmup + window)
        records: dict[str, list[tuple[float, int, float, str]]] = {k: [] for k in ("webhook", "order API", "photo",
                                                                                  "complete")}
        accepted: dict[str, list[Any]] = {"webhooks": [], "shopify_orders": [], "api_orders": [], "completed": []}
        five_xx = Counter()
        lock = threading.Lock()
        futures = []
        work = {"webhook": self.webhook, "order API": self.order, "completion": self.completion}

        def schedule(kind: str, rate: float) -> None:
            # Evenly spaced arrivals, each kind offset by half an interval from t0.
            n = 0
            while (due := t0 + (n + 0.5) / rate) < span[1]:
                time.sleep(max(0.0, due - time.time()))
                with lock:
                    item = self.next[kind]
                    self.next[kind] += 1
                future = self.pools[kind].submit(work[kind], item, due, records, accepted, five_xx, lock)
                futures.append((kind, due, future))
                n += 1

        schedulers = [threading.Thread(target=schedule, args=(kind, rate), daemon=True)
                      for kind, rate in rates.items() if rate > 0]
        for thread in schedulers:
            thread.start()
        for thread in schedulers:
            thread.join()
        # Every request has REQUEST_TIMEOUT_S, but a queue behind a stalled server could
        # take longer still: what has no answer by then counts as an error, not a hang.
        wait([f for _, _, f in futures], timeout=max(0.0, span[1] + 2 * REQUEST_TIMEOUT_S - time.time()))
        with lock:
            for kind, due, future in futures:
                if not future.done():
                    reason = "no answer by the end of the phase"
                elif future.exception() is not None:  # a fault of the bench's, shown rather than lost
                    reason = f"client {type(future.exception()).__name__}: {future.exception()}"[:80]
                else:
                    continue
                records["photo" if kind == "completion" else kind].append((due, 0, math.nan, reason))
            out: dict[str, Any] = {"accepted": {k: list(v) for k, v in accepted.items()}, "five_xx": dict(five_xx)}
            records = {k: list(v) for k, v in records.items()}
        for kind, rows in records.items():
            counted = [r for r in rows if span[0] <= r[0] < span[1]]
            errors = Counter(reason for _, _, _, reason in counted if reason)
            ok = [ms for _, _, ms, reason in counted if not reason]
            out[kind] = summary(ok, sent=len(counted), ok=len(ok), errors=errors, seconds=window)
        return out

    # -- the requests

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = getattr(self.local, "conn", None)
        for attempt in (1, 2):
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
                self.local.conn = conn
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                # A keep-alive connection the server closed while idle: once more on a new one.
                conn.close()
                conn = self.local.conn = None
                if attempt == 2:
                    raise
            except Exception:
                conn.close()
                self.local.conn = None
                raise
        raise AssertionError("unreachable")

    def _timed(self, kind: str, due: float, records: dict[str, list], five_xx: Counter, lock: threading.Lock,
               method: str, path: str, body: bytes, headers: dict[str, str], expect: int,
               since: float | None = None, check: Any = None) -> tuple[int, bytes]:
        """Send, and record (due time, status, ms from ``since`` or the due time, error or "").
        ``check(reply) -> error or ""`` looks into an answer with the expected status."""
        try:
            status, reply = self._request(method, path, body, headers)
            reason = f"HTTP {status}" if status != expect else (check(reply) if check else "")
        except Exception as exc:
            status, reply, reason = 0, b"", type(exc).__name__
        ms = (time.time() - (since if since is not None else due)) * 1000
        with lock:
            records[kind].append((due, status, ms, reason))
            if status >= 500:
                five_xx[f"{kind} {status}"] += 1
        return status, reply

    def webhook(self, n: int, due: float, records: dict, accepted: dict, five_xx: Counter, lock: threading.Lock) -> None:
        from bench.load_world import shopify_delivery

        body, headers = shopify_delivery(self.template, self.world["run_id"], n)
        status, _ = self._timed("webhook", due, records, five_xx, lock, "POST", self.world["hook_path"], body,
                                headers, 200)
        if status == 200:
            with lock:
                accepted["webhooks"].append(headers["X-Shopify-Event-Id"])
                accepted["shopify_orders"].append(str(json.loads(body)["id"]))

    def order(self, n: int, due: float, records: dict, accepted: dict, five_xx: Counter, lock: threading.Lock) -> None:
        payload = {**self.orders[n % len(self.orders)], "external_id": f"api-{self.world['run_id']}-{n:06d}"}
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.world['api_key']}"}
        status, _ = self._timed("order API", due, records, five_xx, lock, "POST", "/api/v1/orders/",
                                json.dumps(payload).encode(), headers, 201)
        if status == 201:
            with lock:
                accepted["api_orders"].append(payload["external_id"])

    def completion(self, n: int, due: float, records: dict, accepted: dict, five_xx: Counter,
                   lock: threading.Lock) -> None:
        """What the PWA's outbox sends for one delivery: the photo, then the action."""
        from bench.load_world import unique_photo

        if n >= len(self.world["stops"]):
            with lock:
                records["photo"].append((due, 0, 0.0, "no stop left to complete"))
            return
        driver, route, stop = self.world["stops"][n]
        csrf = secrets.token_hex(16)
        session = {"Cookie": f"{self.world['driver_cookies'][driver]}; csrftoken={csrf}", "X-CSRFToken": csrf,
                   "Origin": self.origin, "Accept": "application/json"}
        photo = unique_photo(self.photo, f"stop {stop}")
        sha = hashlib.sha256(photo).hexdigest()
        body, content_type = multipart({"kind": "photo", "sha256": sha, "stop": str(stop)}, "file", "photo.jpg",
                                       photo, "image/jpeg")
        status, _ = self._timed("photo", due, records, five_xx, lock, "POST", "/api/v1/pod/media/", body,
                                {**session, "Content-Type": content_type}, 201)
        if status != 201:
            return
        action = str(uuid.uuid4())
        complete = {"id": action, "type": "complete", "stop": stop, "route": route,
                    "device_time": datetime.now(UTC).isoformat(), "pod": {"photos": [sha]}}
        status, reply = self._timed("complete", due, records, five_xx, lock, "POST", "/api/v1/driver/actions/",
                                    json.dumps(complete).encode(), {**session, "Content-Type": "application/json"},
                                    200, since=time.time(), check=_applied)
        if status == 200 and not _applied(reply):
            with lock:
                accepted["completed"].append((stop, sha, action))


def _applied(reply: bytes) -> str:
    """A completion the server applied; anything else (the stop was not open) is an error."""
    outcome = json.loads(reply).get("outcome")
    return "" if outcome == "applied" else f"outcome {outcome}"


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes,
              content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one file, as the browser's FormData sends it."""
    boundary = f"----lastmile{uuid.uuid4().hex}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
