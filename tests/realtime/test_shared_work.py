"""What thousands of sockets in one process share: the log head their heartbeats compare
with is read once per organization, not once per socket; and live pings never queue
behind the one thread Django's synchronous code shares."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.realtime import protocol
from apps.realtime.consumers import DriverConsumer, log_heads
from apps.tracking.models import LocationPing
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


async def test_a_shared_head_is_read_again_once_it_is_a_tenth_of_a_beat_old(acme, head_reads, settings):
    settings.REALTIME_HEARTBEAT_S = 0.5
    from apps.events.services import NewEvent, events_record

    assert await log_heads.get(acme.pk) == 0

    @sync_to_async
    def record():
        from django.db import transaction

        with transaction.atomic():
            events_record(org=acme, actor="system", events=[NewEvent("hub.updated", "hub", 1)])

    await record()
    assert await log_heads.get(acme.pk) == 0  # within the 50 ms it is shared
    await asyncio.sleep(0.06)

    assert await log_heads.get(acme.pk) == 1
    assert head_reads == [acme.pk, acme.pk]


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
