"""Positions reach consoles coalesced: one message per organization per tick, the
latest position per driver, and never another organization's drivers."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from apps.realtime.groups import org_group
from apps.tracking import fanout
from apps.tracking.services import location_receive
from tests.factories import DriverFactory

from .helpers import NOW, north_of_depot, ping

pytestmark = pytest.mark.usefixtures("clock")


def console(layer, org) -> str:
    """A channel listening on the organization's group, as a console socket does."""
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(org_group(org.pk), channel)
    return channel


def received(layer, channel) -> list[dict]:
    """Every message already waiting on the channel (a send completes before flush returns)."""
    async def drain():
        messages = []
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(channel), timeout=0.01))
            except TimeoutError:
                return messages

    return async_to_sync(drain)()


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """location_receive with its after-commit hand-off to the fan-out carried out."""
    def send(driver, pings):
        with django_capture_on_commit_callbacks(execute=True):
            return location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=pings)

    return send


def test_fifty_pings_in_one_tick_are_one_message_with_the_latest_position(layer, send, bob, acme):
    channel = console(layer, acme)
    route = [north_of_depot(10 * n) for n in range(50)]
    for n, (lat, lng) in enumerate(route):
        send(bob, [ping(50 - n, lat=lat, lng=lng)])

    assert fanout.flush_now() == 1

    messages = received(layer, channel)
    assert messages == [{"type": "lastmile.live", "payload": {"type": "positions", "positions": [{
        "driver_id": bob.pk, "lat": route[-1][0], "lng": route[-1][1], "accuracy_m": 8, "speed_mps": 6.1,
        "heading": 90, "at": "2026-11-23T08:59:59+00:00",
    }]}}]


def test_all_of_an_organizations_drivers_share_one_message(layer, send, bob, acme):
    drivers = [bob, *(DriverFactory(org=acme) for _ in range(4))]
    channel = console(layer, acme)
    for second in (3, 2, 1):
        for driver in drivers:
            send(driver, [ping(second)])

    fanout.flush_now()

    (message,) = received(layer, channel)
    assert [p["driver_id"] for p in message["payload"]["positions"]] == sorted(d.pk for d in drivers)
    assert {p["at"] for p in message["payload"]["positions"]} == {"2026-11-23T08:59:59+00:00"}


def test_carols_console_hears_nothing_of_acmes_drivers(layer, send, bob, acme, globex, carol):
    acme_console, globex_console = console(layer, acme), console(layer, globex)
    send(bob, [ping(2), ping(1)])

    fanout.flush_now()

    assert len(received(layer, acme_console)) == 1
    assert received(layer, globex_console) == []


def test_each_organization_gets_its_own_message(layer, send, bob, acme, globex):
    gus = DriverFactory(org=globex, name="Gus Globex")
    acme_console, globex_console = console(layer, acme), console(layer, globex)
    send(bob, [ping(1)])
    send(gus, [ping(1)])

    assert fanout.flush_now() == 2

    assert [p["driver_id"] for m in received(layer, acme_console) for p in m["payload"]["positions"]] == [bob.pk]
    assert [p["driver_id"] for m in received(layer, globex_console) for p in m["payload"]["positions"]] == [gus.pk]


def test_the_next_tick_sends_only_what_moved_since(layer, send, bob, acme):
    ann = DriverFactory(org=acme)
    channel = console(layer, acme)
    send(bob, [ping(5)])
    send(ann, [ping(5)])
    fanout.flush_now()
    received(layer, channel)

    send(bob, [ping(1)])
    fanout.flush_now()

    (message,) = received(layer, channel)
    assert [p["driver_id"] for p in message["payload"]["positions"]] == [bob.pk]


def test_a_quiet_tick_sends_nothing(layer, acme):
    channel = console(layer, acme)

    assert fanout.flush_now() == 0
    assert received(layer, channel) == []


@pytest.mark.parametrize(("seconds_ago", "fields"), [(1, {"accuracy_m": 500}), (13 * 3600, {})],
                         ids=["inaccurate", "stale time"])
def test_a_ping_that_is_not_shown_is_not_sent(layer, send, bob, acme, seconds_ago, fields):
    channel = console(layer, acme)

    send(bob, [ping(seconds_ago, **fields)])
    fanout.flush_now()

    assert received(layer, channel) == []


def test_an_out_of_order_ping_is_not_sent(layer, send, bob, acme):
    send(bob, [ping(1)])
    fanout.flush_now()
    channel = console(layer, acme)

    send(bob, [ping(30)])
    fanout.flush_now()

    assert received(layer, channel) == []


def test_a_jump_is_not_sent(layer, send, bob, acme):
    send(bob, [ping(3)])
    fanout.flush_now()
    channel = console(layer, acme)
    far = north_of_depot(2000)

    send(bob, [ping(2, lat=far[0], lng=far[1])])
    fanout.flush_now()

    assert received(layer, channel) == []


def test_nothing_is_queued_until_the_transaction_commits(layer, bob, acme):
    channel = console(layer, acme)

    location_receive(org_id=bob.org_id, driver_id=bob.pk, pings=[ping(1)])  # the test's transaction stays open
    fanout.flush_now()

    assert received(layer, channel) == []


def test_an_older_position_queued_late_does_not_replace_a_newer_one(layer, acme):
    channel = console(layer, acme)
    newer, older = NOW, NOW - timedelta(seconds=1)
    fanout.push(org_id=acme.pk, driver_id=1, at=newer, position={"driver_id": 1, "at": newer.isoformat()})
    fanout.push(org_id=acme.pk, driver_id=1, at=older, position={"driver_id": 1, "at": older.isoformat()})

    fanout.flush_now()

    assert received(layer, channel)[0]["payload"]["positions"] == [{"driver_id": 1, "at": newer.isoformat()}]


def test_a_failing_channel_layer_never_reaches_the_driver(layer, send, bob, acme, monkeypatch):
    async def broken(*args, **kwargs):
        raise ConnectionError("redis is restarting")

    monkeypatch.setattr(layer, "group_send", broken)

    result = send(bob, [ping(1)])

    assert result["accepted"] == 1
    assert fanout.flush_now() == 0  # dropped, logged; the next tick carries a newer position


def test_the_thread_starts_on_first_use_sends_every_tick_and_stops(layer, acme, settings, manual_fanout, monkeypatch):
    settings.LOCATION_FANOUT_TICK_S = 0.01
    channel = console(layer, acme)
    sent = threading.Event()
    original = manual_fanout._send

    def observed(group, message):
        delivered = original(group, message)
        sent.set()
        return delivered

    monkeypatch.setattr(manual_fanout, "_send", observed)
    manual_fanout.autostart = True

    fanout.push(org_id=acme.pk, driver_id=7, at=NOW, position={"driver_id": 7})

    assert manual_fanout.running
    assert sent.wait(timeout=5)
    assert received(layer, channel) == [{"type": "lastmile.live",
                                         "payload": {"type": "positions", "positions": [{"driver_id": 7}]}}]
    fanout.stop()
    assert not manual_fanout.running


def test_the_thread_runs_the_stale_check_every_interval(settings, manual_fanout, monkeypatch):
    settings.LOCATION_FANOUT_TICK_S = 0.01
    settings.LOCATION_STALE_CHECK_S = 0.01
    checked = threading.Event()
    monkeypatch.setattr("apps.tracking.services.location_check_stale", lambda **kwargs: checked.set())

    manual_fanout.ensure_started()

    assert checked.wait(timeout=5)
    fanout.stop()


def test_positions_go_out_while_a_slow_stale_check_runs(settings, manual_fanout, monkeypatch, layer, acme):
    settings.LOCATION_FANOUT_TICK_S = 0.01
    settings.LOCATION_STALE_CHECK_S = 0.01
    checking, release, sent = threading.Event(), threading.Event(), threading.Event()

    def slow_check(**kwargs):
        checking.set()
        release.wait(5)

    monkeypatch.setattr("apps.tracking.services.location_check_stale", slow_check)
    original = manual_fanout._send
    monkeypatch.setattr(manual_fanout, "_send", lambda group, message: (original(group, message), sent.set())[0])
    manual_fanout.ensure_started()
    assert checking.wait(timeout=5)

    fanout.push(org_id=acme.pk, driver_id=7, at=NOW, position={"driver_id": 7})

    assert sent.wait(timeout=2)  # while the check still holds its thread
    release.set()
    fanout.stop()


def test_a_failing_stale_check_does_not_stop_the_thread(settings, manual_fanout, monkeypatch):
    settings.LOCATION_FANOUT_TICK_S = 0.01
    settings.LOCATION_STALE_CHECK_S = 0.01
    calls = []
    second = threading.Event()

    def failing(**kwargs):
        calls.append(1)
        if len(calls) >= 2:
            second.set()
        raise RuntimeError("database is down")

    monkeypatch.setattr("apps.tracking.services.location_check_stale", failing)

    manual_fanout.ensure_started()

    assert second.wait(timeout=5)
    assert manual_fanout.running
    fanout.stop()


@pytest.mark.asyncio
async def test_positions_are_sent_on_the_servers_event_loop(layer, acme, monkeypatch):
    """The in-memory layer is not thread-safe: a send from the fan-out thread's own loop
    would fill a console's queue without waking the server loop that waits on it."""
    server_loop = asyncio.get_running_loop()
    loops = []

    async def group_send(group, message):
        loops.append(asyncio.get_running_loop())

    monkeypatch.setattr(layer, "group_send", group_send)
    # location_receive runs in one of the server's worker threads (database_sync_to_async).
    await sync_to_async(fanout.push)(org_id=acme.pk, driver_id=1, at=NOW, position={"driver_id": 1})

    # The fan-out thread is a plain thread, not one of asgiref's.
    sent = await server_loop.run_in_executor(None, fanout.flush_now)

    assert sent == 1
    assert loops == [server_loop]


def test_any_batch_of_pings_starts_the_thread_so_the_stale_check_runs(bob, manual_fanout):
    manual_fanout.autostart = True

    location_receive(org_id=bob.org_id, driver_id=bob.pk, pings=[ping(1, accuracy_m=900)])

    assert manual_fanout.running
    fanout.stop()


def test_a_driver_pinging_faster_than_once_a_second_is_sent_at_most_once_a_second(monkeypatch):
    from datetime import UTC, datetime, timedelta

    from apps.tracking.fanout import Coalescer

    clock = [1000.0]
    monkeypatch.setattr("apps.tracking.fanout.time.monotonic", lambda: clock[0])
    sent = []
    coalescer = Coalescer()
    coalescer.autostart = False
    monkeypatch.setattr(coalescer, "_send", lambda group, message: sent.append(message["payload"]["positions"]) or True)
    at = datetime(2026, 11, 23, 9, tzinfo=UTC)

    coalescer.push(org_id=1, driver_id=7, at=at, position={"driver_id": 7, "lat": 1.0})
    coalescer.flush_now(min_interval=1.0)
    coalescer.push(org_id=1, driver_id=7, at=at + timedelta(seconds=0.3), position={"driver_id": 7, "lat": 2.0})
    clock[0] += 0.3
    coalescer.flush_now(min_interval=1.0)  # too soon: held back, not dropped
    clock[0] += 0.8
    coalescer.flush_now(min_interval=1.0)

    assert [[p["lat"] for p in batch] for batch in sent] == [[1.0], [2.0]]
