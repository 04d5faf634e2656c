"""Redis restarts mid-stream (a deploy, a crash): every console converges to the
database's state afterwards, because the log, not the push, is the source of truth."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import pytest
import websockets
from asgiref.sync import sync_to_async

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn
from apps.dispatch.services.orders import order_create
from apps.events.models import Event
from tests.factories import order_payload
from tests.realtime.servers import asgi_servers, free_port, session_cookie

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server; CI machines have it"),
]


class PrivateRedis:
    """A Redis of the test's own on a free loopback port, started as services.md
    starts the shared one (no persistence), so restarting it disturbs nobody else."""

    def __init__(self, workdir):
        self.port, self.workdir = free_port(), workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.port),
                        "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                        "--pidfile", str(self.workdir / "redis.pid"), "--logfile", str(self.workdir / "redis.log")],
                       check=True)
        self._wait(up=True)

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        self._wait(up=False)

    def up(self) -> bool:
        result = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
        return result.stdout.strip() == "PONG"

    def _wait(self, *, up: bool) -> None:
        deadline = time.monotonic() + 10
        while self.up() != up:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis on {self.port} did not {'start' if up else 'stop'}")
            time.sleep(0.05)


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.up():
        server.stop()


class Console:
    """A console client as the browser runs it: applies events by seq, reconnects with hello."""

    def __init__(self, server, cookie):
        self.server, self.cookie, self.last_seq, self.seen = server, cookie, 0, []

    async def run(self, until_seq: int, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while self.last_seq < until_seq:
                try:
                    async with websockets.connect(f"{self.server.ws}/ws/console/", additional_headers={
                            "Cookie": self.cookie, "Origin": self.server.http}) as socket:
                        await socket.send(json.dumps({"type": "hello", "last_seq": self.last_seq}))
                        async for raw in socket:
                            self.apply(json.loads(raw))
                            if self.last_seq >= until_seq:
                                return
                except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake):
                    # As the browser client does: back off briefly and reconnect with hello.
                    await asyncio.sleep(0.2)

    def apply(self, message):
        if message["type"] == "snapshot":
            self.last_seq = max(self.last_seq, message["seq"])
        elif message["type"] == "events":
            for event in message["events"]:
                if event["seq"] > self.last_seq:
                    self.seen.append(event["seq"])
                    self.last_seq = event["seq"]


def test_consoles_converge_after_redis_restarts(acme, dave, redis, settings):
    cookie = session_cookie(dave)
    # This process publishes too (the orders below): through the same Redis.
    layer = {**settings.CHANNEL_LAYERS["default"]} if "redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"] else {
        "BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [{}]}}
    layer["CONFIG"] = {**layer["CONFIG"], "hosts": [{**layer["CONFIG"]["hosts"][0], "address": redis.url}]}
    settings.CHANNEL_LAYERS = {"default": layer}

    @sync_to_async
    def create(n, prefix):
        for i in range(n):
            order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload(external_id=f"{prefix}{i}")))

    async def scenario():
        with asgi_servers(2, env={"REDIS_URL": redis.url}) as (a, b):
            first, second = Console(a, cookie), Console(b, cookie)
            # The consoles stay connected through the restart; they only reconnect if
            # their socket actually drops.
            watching = [asyncio.create_task(c.run(until_seq=7)) for c in (first, second)]
            await create(3, "before-")
            async with asyncio.timeout(10):
                while min(first.last_seq, second.last_seq) < 3:
                    await asyncio.sleep(0.05)

            await sync_to_async(redis.stop)()
            await sync_to_async(redis.start)()
            await create(4, "after-")  # their pushes may go nowhere: Redis forgot the groups

            await asyncio.gather(*watching)
            head = await sync_to_async(lambda: Event.objects.filter(org=acme).count())()
            return head, first, second

    head, first, second = asyncio.run(scenario())

    assert head == 7
    for console in (first, second):
        assert console.last_seq == head
        assert console.seen == sorted(set(console.seen))  # nothing applied twice or out of order
