"""Several ASGI processes behind a load balancer share PostgreSQL and Redis: a console on
one process sees what a driver and a partner do through another."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.accounts.actor import system_actor
from apps.accounts.services import api_client_create
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.services.routes import route_create, route_publish
from tests.factories import OrderFactory, order_payload
from tests.realtime.servers import asgi_servers, post_json, session_cookie

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL); CI always sets it"),
]


async def _open(server, path, cookie):
    socket = await websockets.connect(f"{server.ws}{path}", additional_headers={
        "Cookie": cookie, "Origin": server.http})
    welcome = json.loads(await socket.recv())
    assert welcome["type"] == "welcome", welcome
    return socket


async def _next(socket, wanted, timeout=10):
    """The next message of type ``wanted``, skipping heartbeats and the like."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == wanted:
                return message


def test_events_cross_between_two_server_processes(acme, dave, bob, acme_hub, acme_van):
    actor = system_actor(acme)
    order = OrderFactory(org=acme)
    route = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
        hub=acme_hub.pk, date=timezone.now().date().isoformat(), driver=bob.pk, vehicle=acme_van.pk, orders=[order.pk])))
    stop = Stop.objects.get(route=route)
    _, key = api_client_create(org=acme, name="Shop", scopes=["orders:write", "stops:write", "stops:read"])
    dave_cookie, bob_cookie = session_cookie(dave), session_cookie(bob.user)

    async def scenario():
        with asgi_servers(2) as (a, b):
            console = await _open(a, "/ws/console/", dave_cookie)
            driver = await _open(b, "/ws/driver/", bob_cookie)

            status, _ = await sync_to_async(post_json)(f"{b.http}/api/v1/orders/",
                                                       order_payload(external_id="X-1"), api_key=key)
            assert status == 201
            created = await _next(console, "events")
            assert [e["type"] for e in created["events"]] == ["order.created"]

            status, _ = await sync_to_async(post_json)(f"{b.http}/api/v1/stops/{stop.pk}/complete/", {}, api_key=key)
            assert status == 200
            on_console = await _next(console, "events")
            on_driver = await _next(driver, "events")
            assert "stop.completed" in [e["type"] for e in on_console["events"]]
            assert "stop.completed" in [e["type"] for e in on_driver["events"]]
            seqs = [e["seq"] for e in created["events"] + on_console["events"]]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

            # Bob's phone pings through b (stored by b's ping writer); Dave's console on a sees him.
            await driver.send(json.dumps({"type": "ping", "lat": 52.53, "lng": 13.38, "accuracy_m": 6,
                                          "at": timezone.now().isoformat()}))
            ack = await _next(driver, "pings.ack")
            assert (ack["accepted"], ack["rejected"]) == (1, [])
            positions = await _next(console, "positions")
            assert [(p["driver_id"], p["lat"]) for p in positions["positions"]] == [(bob.pk, 52.53)]
            await console.close()
            await driver.close()

    asyncio.run(scenario())
