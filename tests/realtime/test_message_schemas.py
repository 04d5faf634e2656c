"""Every message type on the wire matches its schema and is documented."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn
from apps.dispatch.services.orders import order_create
from apps.realtime.consumers import ConsoleConsumer, DriverConsumer, TrackConsumer
from apps.realtime.schemas import MESSAGE_SCHEMAS, SNAPSHOT_DATA
from apps.tracking import fanout
from apps.tracking.services import tracking_token_issue
from tests.factories import OrderFactory, order_payload
from tests.realtime.fleets import large_fleet_create

DOC = (Path(__file__).resolve().parents[2] / "docs" / "realtime.md").read_text()


def check(message):
    jsonschema.validate(message, MESSAGE_SCHEMAS[message["type"]], format_checker=jsonschema.FormatChecker())
    return message


def test_every_message_type_is_documented():
    documented = set(re.findall(r'\{"type": "([a-z.]+)"', DOC))

    assert set(MESSAGE_SCHEMAS) <= documented


async def _open(consumer, path, **scope):
    communicator = WebsocketCommunicator(consumer.as_asgi(), path)
    communicator.scope.update(scope)
    assert (await communicator.connect())[0]
    return communicator


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_console_speaks_the_documented_messages(dave, bob, acme, settings):
    settings.REALTIME_HEARTBEAT_S = 0.2
    seen = set()
    console = await _open(ConsoleConsumer, "/ws/console/", user=dave)
    seen.add(check(await console.receive_json_from())["type"])

    await console.send_json_to({"type": "hello", "last_seq": 0})
    snapshot = check(await console.receive_json_from())
    jsonschema.validate(snapshot["data"], SNAPSHOT_DATA["console"])
    seen.add("snapshot")

    await sync_to_async(order_create)(actor=system_actor(acme), data=OrderIn.model_validate(order_payload()))
    driver = await _open(DriverConsumer, "/ws/driver/", user=bob.user)
    await driver.receive_json_from()
    await driver.send_json_to({"type": "ping", "lat": 52.52, "lng": 13.40, "accuracy_m": 5, "speed_mps": 3.0,
                               "heading": 90, "at": datetime.now(UTC).isoformat()})
    seen.add(check(await driver.receive_json_from(timeout=3))["type"])  # pings.ack
    await sync_to_async(fanout.flush_now)()
    await driver.send_json_to({"type": "dance"})
    seen.add(check(await driver.receive_json_from())["type"])  # error

    while seen != {"welcome", "snapshot", "events", "heartbeat", "positions", "pings.ack", "error"}:
        seen.add(check(await console.receive_json_from(timeout=3))["type"])
    await console.disconnect()
    await driver.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_tracking_socket_speaks_the_documented_messages(acme):
    order = await sync_to_async(OrderFactory)(org=acme)
    token = await sync_to_async(tracking_token_issue)(order=order)
    track = await _open(TrackConsumer, f"/ws/track/{token.token}/", url_route={"kwargs": {"token": token.token}})
    check(await track.receive_json_from())

    await track.send_json_to({"type": "hello", "last_seq": 0})
    snapshot = check(await track.receive_json_from())
    jsonschema.validate(snapshot["data"], SNAPSHOT_DATA["track"])
    await track.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_console_of_an_organization_too_large_for_one_message_gets_its_snapshot_in_pages(dave, acme):
    # Thousands of drivers, each with a position: about 1.3 MB as one message.
    await sync_to_async(large_fleet_create)(acme, 3000)
    console = await _open(ConsoleConsumer, "/ws/console/", user=dave)
    check(await console.receive_json_from())

    await console.send_json_to({"type": "hello", "last_seq": 0})
    frames = [await console.receive_from(timeout=10)]
    header = check(json.loads(frames[0]))
    while json.loads(frames[-1])["type"] != "snapshot.end":
        frames.append(await console.receive_from(timeout=10))
    messages = [check(json.loads(frame)) for frame in frames]

    # Daphne (autobahn) refuses any message over 1 MiB; the snapshot as one would be.
    assert sum(len(frame) for frame in frames) > 1 << 20
    assert max(len(frame.encode()) for frame in frames) < 1 << 20
    assert header["pages"] == len(messages) - 2 and messages[-1]["pages"] == header["pages"]
    data = header["data"]
    for page in messages[1:-1]:
        for key, items in page["data"].items():
            data[key] = data[key] + items
    jsonschema.validate(data, SNAPSHOT_DATA["console"])
    assert len(data["drivers"]) == 3000 and len(data["positions"]) == 3000
    await console.disconnect()
