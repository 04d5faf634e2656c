"""End to end over the WebSocket endpoints: Bob's phone pings on /ws/driver/, Dave's
console on /ws/console/ sees him move; Carol's console does not."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

from apps.realtime.consumers import ConsoleConsumer, DriverConsumer
from apps.tracking import fanout

from .helpers import north_of_depot, ping

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def connect(consumer, path, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(consumer.as_asgi(), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "welcome"
    return communicator


async def test_bobs_pings_are_acknowledged_and_reach_daves_console_once_per_tick(bob, dave, carol, layer):
    phone = await connect(DriverConsumer, "/ws/driver/", bob.user)
    console = await connect(ConsoleConsumer, "/ws/console/", dave)
    other_console = await connect(ConsoleConsumer, "/ws/console/", carol)
    lat, lng = north_of_depot(40)
    first = ping(3)

    await phone.send_json_to({"type": "ping", **first})
    assert await phone.receive_json_from() == {"type": "pings.ack", "accepted": 1, "duplicates": 0, "rejected": [],
                                               "flagged": 0}
    await phone.send_json_to({"type": "pings", "pings": [ping(2, lat=lat, lng=lng), first, {"lat": 91}]})
    ack = await phone.receive_json_from()
    assert (ack["accepted"], ack["duplicates"], [r["index"] for r in ack["rejected"]]) == (1, 1, [2])

    # From a plain thread, as the fan-out thread does it (not one of asgiref's).
    assert await asyncio.get_running_loop().run_in_executor(None, fanout.flush_now) == 1

    message = await console.receive_json_from(timeout=2)
    assert message["type"] == "positions"
    assert [(p["driver_id"], p["lat"], p["lng"]) for p in message["positions"]] == [(bob.pk, lat, lng)]
    assert await other_console.receive_nothing()
    for communicator in (phone, console, other_console):
        await communicator.disconnect()


async def test_a_console_that_connects_later_finds_bob_in_its_snapshot(bob, dave, layer):
    phone = await connect(DriverConsumer, "/ws/driver/", bob.user)
    await phone.send_json_to({"type": "ping", **ping(1)})
    await phone.receive_json_from()

    console = await connect(ConsoleConsumer, "/ws/console/", dave)
    await console.send_json_to({"type": "hello", "last_seq": 0})
    snapshot = await console.receive_json_from()

    assert [p["driver_id"] for p in snapshot["data"]["positions"]] == [bob.pk]
    await phone.disconnect()
    await console.disconnect()


async def test_pings_the_database_cannot_store_are_not_acknowledged_and_the_socket_closes(bob, layer, monkeypatch):
    """The phone keeps what was not acknowledged and sends it again after reconnecting."""
    from django.db import OperationalError

    from apps.tracking.writer import ping_writer

    def database_away(*, batches):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(ping_writer, "_store", database_away)
    phone = await connect(DriverConsumer, "/ws/driver/", bob.user)

    await phone.send_json_to({"type": "ping", **ping(1)})

    assert await phone.receive_output(timeout=5) == {"type": "websocket.close", "code": 1011}
