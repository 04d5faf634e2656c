"""An ASGI process dies (SIGKILL) with a driver connected to it: the driver's app
reconnects through the load balancer to the other process, and the pings it buffered
while cut off arrive exactly once.

Production's shape on one machine (bench/topology.py): a TCP load balancer in front of
two Daphne processes sharing PostgreSQL and Redis. The driver is the simulator's client,
which speaks the PWA's protocol (buffer while offline, one ``pings`` batch on reconnect).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone

from apps.dispatch.simulation.client import DriverSocket, HttpSession
from apps.tracking.models import LocationPing
from bench.topology import topology
from tests.factories import PASSWORD, DriverFactory
from tests.realtime.servers import database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="several processes need Redis (REDIS_URL); CI sets it"),
]


def _ping(n: int, start) -> dict:
    # A slow walk north-east, one fix every 5 s, each with its own device time.
    return {"lat": 52.52 + n * 0.0001, "lng": 13.40 + n * 0.0001, "accuracy_m": 6.0,
            "at": (start + timedelta(seconds=5 * n)).isoformat(timespec="milliseconds")}


def test_a_driver_on_a_killed_process_reconnects_to_the_other_and_its_backlog_arrives_once(acme):
    driver = DriverFactory(org=acme, on_duty=True)
    # The servers check passwords with the production hashers, not the suite's fast one.
    driver.user.password = PBKDF2PasswordHasher().encode(PASSWORD, "faultsalt1234")
    driver.user.save(update_fields=["password"])
    start = timezone.now() - timedelta(minutes=10)
    logs: list[str] = []

    async def scenario(url: str, servers, balancer) -> DriverSocket:
        session = HttpSession(url)
        await session.login(driver.user.username, PASSWORD)
        socket = DriverSocket(session, log=logs.append, relogin=lambda: session.login(driver.user.username, PASSWORD),
                              first_backoff_s=0.2, max_backoff_s=1.0)
        runner = asyncio.create_task(socket.run())
        try:
            async with asyncio.timeout(20):
                while not socket.connected:
                    await asyncio.sleep(0.05)
            for n in range(5):
                await socket.send_ping(_ping(n, start))
            assert await socket.drain(10), logs

            # Whichever process holds the socket dies without a chance to say goodbye.
            holder = next(s for s in servers if balancer.open[s.port] > 0)
            await sync_to_async(holder.kill)()
            async with asyncio.timeout(20):
                while socket.connected:
                    await asyncio.sleep(0.05)
            for n in range(5, 12):  # recorded while cut off: buffered on the phone
                await socket.send_ping(_ping(n, start))
            async with asyncio.timeout(30):
                while not socket.connected:
                    await asyncio.sleep(0.05)
            assert await socket.drain(15), logs
            # The app cannot know whether its first batch landed; sending it again is harmless.
            for n in range(5, 12):
                await socket.send_ping(_ping(n, start))
            assert await socket.drain(15), logs
            return socket
        finally:
            await socket.close()
            runner.cancel()

    with topology(database_url(), os.environ["REDIS_URL"], asgi=2, workers=0,
                  extra_env={"REALTIME_HEARTBEAT_S": "1"}) as running:
        socket = asyncio.run(scenario(running.url, running.servers, running.balancer))
        survivors = [s for s in running.servers if s.alive()]
        assert len(survivors) == 1

    stored = list(LocationPing.objects.filter(driver=driver).order_by("device_time").values_list("device_time", flat=True))
    assert len(stored) == 12, logs
    assert stored == sorted(set(stored))  # each fix once
    assert socket.stats.batches >= 1  # the buffered pings went as one backlog batch
    assert socket.stats.duplicates >= 7  # the resent batch was recognised, not stored twice

