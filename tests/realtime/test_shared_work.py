"""What thousands of sockets in one process share: the log head their heartbeats compare
with, and the events they missed, are read once per organization, not once per socket;
one task beats for all of them; and live pings never queue behind the one thread
Django's synchronous code shares."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.utils import timezone

from apps.dispatch.models import Route
from apps.events.services import NewEvent, events_record
from apps.realtime import protocol
from apps.realtime.beats import beats
from apps.realtime.consumers import ConsoleConsumer, DriverConsumer, log_heads
from apps.tracking.models import LocationPing
from tests.factories import DriverFactory
from tests.tracking.helpers import ping

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def head_reads(monkeypatch):
    """Every read of an organization's log head, by organization."""
    reads: list[int] = []
    real = protocol.org_log_head

    def counted(org_id):
        reads.append(org_id)
        return real(org_id)

    monkeypatch.setattr(protocol, "org_log_head", counted)
    return reads


async def test_many_sockets_of_one_organization_read_the_log_head_once_per_beat(acme, globex, head_reads, settings):
    settings.REALTIME_HEARTBEAT_S = 10  # the head is shared for a tenth of it: 1 s

    heads = await asyncio.gather(*(log_heads.get(acme.pk) for _ in range(50)), log_heads.get(globex.pk))

    assert sorted(head_reads) == sorted([acme.pk, globex.pk])
    assert set(heads) == {0}


async def test_a_shared_head_is_read_again_once_it_is_a_tenth_of_a_beat_old(acme, head_reads, settings,
                                                                            monkeypatch):
    settings.REALTIME_HEARTBEAT_S = 0.5
    now = [1000.0]
    monkeypatch.setattr(log_heads, "clock", lambda: now[0])

    assert await log_heads.get(acme.pk) == 0

    @sync_to_async
    def record():
        with transaction.atomic():
            events_record(org=acme, actor="system", events=[NewEvent("hub.updated", "hub", 1)])

    await record()
    now[0] += 0.04
    assert await log_heads.get(acme.pk) == 0  # within the 50 ms it is shared
    now[0] += 0.02

    assert await log_heads.get(acme.pk) == 1
    assert head_reads == [acme.pk, acme.pk]


@pytest.fixture
def log_reads(monkeypatch):
    """Every shared read of an organization's new events: (org id, after, up to)."""
    reads: list[tuple[int, int, int]] = []
    real = protocol.org_log_slice

    def counted(org_id, after, upto):
        reads.append((org_id, after, upto))
        return real(org_id, after, upto)

    monkeypatch.setattr(protocol, "org_log_slice", counted)
    return reads


@sync_to_async
def _record_without_pushing(org, *events):
    """Events in the log whose live push is lost: only a heartbeat's repair delivers them."""
    with transaction.atomic():
        rows = events_record(org=org, actor="system", events=list(events))
        transaction.get_connection().run_on_commit = []
    return rows


async def _socket(consumer, path, user):
    communicator = WebsocketCommunicator(consumer.as_asgi(), path)
    communicator.scope["user"] = user
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from())["type"] == "welcome"
    return communicator


async def _until_heartbeat_at(communicator, seq):
    """Messages up to the first heartbeat at ``seq`` or later (the repair comes before it)."""
    seen = []
    while True:
        message = await communicator.receive_json_from(timeout=3)
        seen.append(message)
        if message["type"] == "heartbeat" and message["seq"] >= seq:
            return seen


@sync_to_async
def _drivers_with_routes(org, hub, n):
    drivers = [DriverFactory(org=org, home_hub=hub) for _ in range(n)]
    routes = [Route.objects.create(org=org, hub=hub, driver=d, date=timezone.now().date(), start_lat=52.5,
                                   start_lng=13.4, end_lat=52.5, end_lng=13.4) for d in drivers]
    return [(d, d.user) for d in drivers], routes


async def test_many_driver_sockets_of_one_organization_read_the_missed_events_once_per_beat(
        acme, acme_hub, log_reads, settings):
    settings.REALTIME_HEARTBEAT_S = 0.3
    drivers, routes = await _drivers_with_routes(acme, acme_hub, 6)
    phones = [await _socket(DriverConsumer, "/ws/driver/", user) for _, user in drivers]

    # Something happens on the first driver's route and on nobody's: every socket lags.
    await _record_without_pushing(acme, NewEvent("stop.completed", "stop", 1, {"route_id": routes[0].pk}),
                                  NewEvent("hub.updated", "hub", acme_hub.pk))
    received = [await _until_heartbeat_at(phone, 2) for phone in phones]

    assert log_reads == [(acme.pk, 0, 2)]
    repaired = [[e["seq"] for m in seen if m["type"] == "events" for e in m["events"]] for seen in received]
    assert repaired == [[1]] + [[]] * 5  # each driver picked only his own from the shared read
    for phone in phones:
        await phone.disconnect()


async def test_the_shared_read_serves_a_console_and_a_driver_of_one_organization_alike(
        acme, acme_hub, dave, log_reads, settings):
    settings.REALTIME_HEARTBEAT_S = 0.3
    drivers, routes = await _drivers_with_routes(acme, acme_hub, 2)
    console = await _socket(ConsoleConsumer, "/ws/console/", dave)
    phone = await _socket(DriverConsumer, "/ws/driver/", drivers[1][1])

    await _record_without_pushing(acme, NewEvent("stop.completed", "stop", 1, {"route_id": routes[0].pk}),
                                  NewEvent("driver.updated", "driver", drivers[1][0].pk))

    console_saw = [e["seq"] for m in await _until_heartbeat_at(console, 2) if m["type"] == "events"
                   for e in m["events"]]
    phone_saw = [e["seq"] for m in await _until_heartbeat_at(phone, 2) if m["type"] == "events" for e in m["events"]]
    assert (console_saw, phone_saw) == ([1, 2], [2])
    assert log_reads == [(acme.pk, 0, 2)]
    await console.disconnect()
    await phone.disconnect()


async def test_one_task_beats_for_every_socket_and_stops_when_the_last_one_leaves(acme, acme_hub, settings):
    settings.REALTIME_HEARTBEAT_S = 0.3
    drivers, _ = await _drivers_with_routes(acme, acme_hub, 3)
    def beating():
        return [t for t in asyncio.all_tasks() if t.get_name() == "lastmile-heartbeats" and not t.done()]

    phones = [await _socket(DriverConsumer, "/ws/driver/", user) for _, user in drivers]
    ticker = beats.ticker()

    assert len(ticker) == 3 and beating() == [ticker.task]
    beaten = [await _until_heartbeat_at(phone, 0) for phone in phones]
    assert all(seen[-1]["type"] == "heartbeat" for seen in beaten)
    for phone in phones:
        await phone.disconnect()
    assert ticker.task is None and len(ticker) == 0
    await asyncio.sleep(0)
    assert beating() == []


async def _snapshot_of(communicator):
    while (message := await communicator.receive_json_from(timeout=5))["type"] != "snapshot":
        pass
    return message


async def test_consoles_of_one_organization_that_ask_together_share_one_snapshot(acme, dave, monkeypatch):
    builds = []
    real = protocol._console_snapshot
    monkeypatch.setattr(protocol, "_console_snapshot", lambda ctx: builds.append(ctx.org_id) or real(ctx))
    consoles = [await _socket(ConsoleConsumer, "/ws/console/", dave) for _ in range(3)]

    for console in consoles:
        await console.send_json_to({"type": "hello", "last_seq": 0})
    snapshots = [await _snapshot_of(console) for console in consoles]

    assert builds == [acme.pk]
    assert all(s["data"] == snapshots[0]["data"] for s in snapshots)

    # Once the log has moved, the next console gets a snapshot built afresh.
    await _record_without_pushing(acme, NewEvent("hub.updated", "hub", 1))
    await consoles[0].send_json_to({"type": "resync", "last_seq": 0})

    assert (await _snapshot_of(consoles[0]))["seq"] == 1
    assert builds == [acme.pk, acme.pk]
    for console in consoles:
        await console.disconnect()


async def test_a_ping_is_stored_and_acknowledged_while_the_shared_thread_is_busy(bob):
    """A slow synchronous request holds the thread Django's sync code shares; live pings
    go through the ping writer's own thread and must not wait for it."""
    phone = WebsocketCommunicator(DriverConsumer.as_asgi(), "/ws/driver/")
    phone.scope["user"] = bob.user
    assert (await phone.connect())[0]
    await phone.receive_json_from()  # welcome
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait)(10))  # the shared thread, held
    await asyncio.sleep(0.05)
    started = time.monotonic()

    await phone.send_json_to({"type": "ping", **ping(1)})
    ack = await phone.receive_json_from(timeout=3)

    assert ack["accepted"] == 1
    assert time.monotonic() - started < 3
    assert not busy.done()  # the shared thread was still held when the ack came
    release.set()
    await busy
    assert await sync_to_async(LocationPing.objects.filter(driver=bob).count)() == 1
    await phone.disconnect()
