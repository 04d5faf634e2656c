"""A console that stops reading (a frozen tab) does not hold back the others: its
channel's queue in Redis is bounded, the messages that overflow it are dropped for it
alone, and each drop is logged as a warning and counted in a metric. (When the tab reads
again it resyncs from the event log: tests/realtime/test_consumers.py, TestLive.)"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import transaction

from apps.common import metrics
from apps.events.services import event_record
from apps.realtime.groups import org_group
from tests.realtime.test_consumers import _console

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="channel capacity is Redis's (REDIS_URL); CI sets it"),
]

CAPACITY = 20
EVENTS = 50


@pytest.fixture
def layer_config(settings):
    config = {"hosts": [os.environ["REDIS_URL"]], "capacity": CAPACITY, "expiry": 60,
              "prefix": f"stall-{uuid.uuid4().hex}"}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}}
    return config


@sync_to_async
def _record_events(org, count):
    sequences = []
    for n in range(count):
        with transaction.atomic():  # one commit, hence one push, per event
            sequences.append(event_record(org=org, actor="system", type="hub.updated", subject_type="hub",
                                          subject_id=n).sequence)
    return sequences


def _dropped() -> float:
    return metrics.channel_over_capacity.labels(group="org")._value.get()


async def test_a_stalled_console_does_not_hold_back_others_and_its_drops_are_logged_and_counted(
        layer_config, dave, acme, caplog):
    # The frozen console lives in another server process (its own layer, so its own queue
    # in Redis), in the group but never reading.
    other_process = RedisChannelLayer(**layer_config)
    frozen = await other_process.new_channel()
    await get_channel_layer().group_add(org_group(acme.pk), frozen)
    live, _ = await _console(dave)
    before = _dropped()

    with caplog.at_level(logging.INFO, logger="channels_redis.core"):
        sequences = await _record_events(acme, EVENTS)

        received = []
        while len(received) < EVENTS:
            message = await live.receive_json_from(timeout=5)
            if message["type"] == "events":
                received += [e["seq"] for e in message["events"]]

    assert received == sequences  # the live console got everything, in order, undelayed by the frozen one
    assert _dropped() - before == EVENTS - CAPACITY
    warnings = [r for r in caplog.records if r.name == "channels_redis.core" and r.levelno == logging.WARNING]
    assert len(warnings) == EVENTS - CAPACITY
    assert f"group {org_group(acme.pk)}" in warnings[0].getMessage() and "stalled" in warnings[0].getMessage()
    # Redis held at most a channel's capacity for the frozen console, not the whole stream.
    queued = 0
    while queued <= EVENTS:
        try:
            await asyncio.wait_for(other_process.receive(frozen), timeout=1)
        except TimeoutError:
            break
        queued += 1
    assert queued == CAPACITY
    await live.disconnect()
