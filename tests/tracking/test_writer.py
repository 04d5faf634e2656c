"""The ping writer: live pings of many drivers stored in one commit per tick, acknowledged
once stored, nothing lost on a clean shutdown, memory bounded, failures retried or
surfaced. Bob and Ann drive for Acme; Carol's Globex must see none of it."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.utils import timezone

from apps.events import types as ev
from apps.events.models import Event
from apps.tracking import fanout
from apps.tracking.models import DriverPosition, LocationPing, PingStatus
from apps.tracking.services import location_store
from apps.tracking.writer import PingWriter
from tests.factories import DriverFactory

from .helpers import north_of_depot, ping

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


class CountingStore:
    """location_store, counting its calls and failing the first ``fail`` of them with ``error``."""

    def __init__(self, fail: int = 0, error: Exception | None = None) -> None:
        self.calls: list[int] = []
        self.fail, self.error = fail, error

    def __call__(self, *, batches):
        self.calls.append(len(batches))
        if len(self.calls) <= self.fail:
            raise self.error or OperationalError("server closed the connection unexpectedly")
        location_store(batches=batches)


@pytest.fixture
def writer():
    """A writer of its own, flushed by hand unless the test starts its thread."""
    made = []

    def make(**kwargs) -> PingWriter:
        w = PingWriter(**kwargs)
        w.autostart = False
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def send(w: PingWriter, driver, pings) -> asyncio.Task:
    return asyncio.ensure_future(w.submit(org_id=driver.org_id, driver_id=driver.pk, pings=pings))


async def flush(w: PingWriter) -> int:
    await asyncio.sleep(0)  # let the submitted tasks queue their batches
    taken = await database_sync_to_async(w.flush_now, thread_sensitive=False)()
    await asyncio.sleep(0.01)  # acknowledgements are completed on this loop
    return taken


def stored(driver) -> list[tuple[float, str]]:
    return list(LocationPing.objects.filter(driver=driver).order_by("device_time").values_list("lat", "status"))


async def test_a_tick_of_pings_from_many_drivers_is_one_commit(writer, bob, acme):
    ann = await sync_to_async(DriverFactory)(org=acme, name="Ann Arbor")
    store = CountingStore()
    w = writer(store=store)
    acks = [send(w, bob, [ping(3)]), send(w, ann, [ping(3)]), send(w, bob, [ping(2, lat=north_of_depot(10)[0])])]

    assert await flush(w) == 3

    assert store.calls == [3]
    assert [await a for a in acks] == [{"accepted": 1, "duplicates": 0, "rejected": [], "flagged": 0}] * 3
    assert len(await sync_to_async(stored)(bob)) == 2
    assert len(await sync_to_async(stored)(ann)) == 1


async def test_an_ack_waits_for_the_commit(writer, bob):
    w = writer()
    ack = send(w, bob, [ping(1)])
    await asyncio.sleep(0.05)

    assert not ack.done()
    assert w.pending == 1
    assert not await sync_to_async(LocationPing.objects.exists)()

    await flush(w)

    assert (await ack)["accepted"] == 1
    assert await sync_to_async(LocationPing.objects.count)() == 1


async def test_the_thread_stores_a_ping_within_a_tick_and_moves_the_marker(writer, bob, settings):
    settings.LOCATION_WRITE_TICK_S = 0.05
    w = writer()
    w.autostart = True
    lat, lng = north_of_depot(30)

    ack = await asyncio.wait_for(w.submit(org_id=bob.org_id, driver_id=bob.pk, pings=[ping(1, lat=lat, lng=lng)]),
                                 timeout=2)

    assert ack["accepted"] == 1
    position = await sync_to_async(DriverPosition.objects.get)(driver=bob)
    assert (position.lat, position.lng) == (lat, lng)


async def test_the_thread_gathers_pings_that_arrive_during_a_tick_into_one_commit(writer, bob, acme, settings):
    settings.LOCATION_WRITE_TICK_S = 0.3
    drivers = [bob, *[await sync_to_async(DriverFactory)(org=acme) for _ in range(5)]]
    store = CountingStore()
    w = writer(store=store)
    w.autostart = True
    await w.submit(org_id=bob.org_id, driver_id=bob.pk, pings=[ping(5)])  # a commit just happened

    acks = await asyncio.wait_for(asyncio.gather(*(send(w, d, [ping(1)]) for d in drivers)), timeout=3)

    assert [a["accepted"] for a in acks] == [1] * 6
    assert store.calls == [1, 6]


async def test_a_clean_shutdown_stores_what_is_pending(writer, bob):
    w = writer()
    ack = send(w, bob, [ping(2), ping(1)])
    await asyncio.sleep(0)

    await database_sync_to_async(w.stop, thread_sensitive=False)()

    assert len(await sync_to_async(stored)(bob)) == 2
    assert (await asyncio.wait_for(ack, 1))["accepted"] == 2


async def test_duplicates_are_dropped_within_a_batch_within_a_commit_and_across_commits(writer, bob):
    w = writer()
    same, later = ping(5), ping(4)
    first = send(w, bob, [same, same])
    second = send(w, bob, [same, later])
    await flush(w)
    third = send(w, bob, [later, same])
    await flush(w)

    assert [(a["accepted"], a["duplicates"]) for a in [await first, await second, await third]] == [
        (1, 1), (1, 1), (0, 2)]
    assert len(await sync_to_async(stored)(bob)) == 2


async def test_an_older_batch_in_the_same_commit_never_moves_the_marker_back(writer, bob):
    w = writer()
    newer, older = north_of_depot(100), north_of_depot(50)
    acks = [send(w, bob, [ping(10, lat=newer[0], lng=newer[1])]), send(w, bob, [ping(20, lat=older[0], lng=older[1])])]
    await flush(w)

    assert [(await a)["accepted"] for a in acks] == [1, 1]
    position = await sync_to_async(DriverPosition.objects.get)(driver=bob)
    assert (position.lat, position.lng) == newer


async def test_a_late_ping_is_judged_against_a_shown_ping_of_the_same_commit(writer, bob):
    """Two batches in one commit: the second, older, is compared with the first batch's
    shown point before it, which is not in the table yet."""
    w = writer()
    jump = north_of_depot(5000)
    acks = [send(w, bob, [ping(100), ping(10, lat=north_of_depot(300)[0])]),
            send(w, bob, [ping(99, lat=jump[0], lng=jump[1])])]
    await flush(w)

    assert [(await a)["flagged"] for a in acks] == [0, 1]
    assert await sync_to_async(lambda: LocationPing.objects.get(lat=jump[0]).status)() == PingStatus.JUMP


async def test_a_commit_keeps_each_organization_to_itself(writer, bob, globex):
    gus = await sync_to_async(DriverFactory)(org=globex, name="Gus")
    w = writer()
    acks = [send(w, bob, [ping(1)]), send(w, gus, [ping(1)])]
    # Bob's id claimed for Globex (a forged context): refused, and nothing of Bob's lands at Globex.
    forged = asyncio.ensure_future(w.submit(org_id=globex.pk, driver_id=bob.pk, pings=[ping(2)]))
    await flush(w)

    assert [(await a)["accepted"] for a in acks] == [1, 1]
    assert [r["code"] for r in (await forged)["rejected"]] == ["driver_not_allowed"]
    assert await sync_to_async(LocationPing.objects.filter(org=globex, driver=bob).exists)() is False
    assert await sync_to_async(LocationPing.objects.filter(org=globex).count)() == 1


async def test_a_deactivated_driver_pending_in_the_buffer_is_refused_at_commit(writer, bob):
    w = writer()
    ack = send(w, bob, [ping(1)])
    await asyncio.sleep(0)
    bob.active = False
    await sync_to_async(bob.save)()

    await flush(w)

    assert [r["code"] for r in (await ack)["rejected"]] == ["driver_not_allowed"]
    assert not await sync_to_async(LocationPing.objects.exists)()


async def test_a_ping_after_a_stale_alert_records_resumed_in_the_commit(writer, bob):
    await sync_to_async(DriverPosition.objects.create)(driver=bob, org_id=bob.org_id, stale_since=timezone.now())
    w = writer()
    ack = send(w, bob, [ping(1)])
    await flush(w)

    assert (await ack)["accepted"] == 1
    resumed = await sync_to_async(list)(Event.objects.filter(type=ev.DRIVER_LOCATION_RESUMED).values_list(
        "subject_id", flat=True))
    assert resumed == [str(bob.pk)]
    assert (await sync_to_async(DriverPosition.objects.get)(driver=bob)).stale_since is None


async def test_moved_drivers_reach_the_fan_out_after_the_commit(writer, bob, manual_fanout_buffer):
    w = writer()
    lat, lng = north_of_depot(20)
    ack = send(w, bob, [ping(1, lat=lat, lng=lng)])
    await asyncio.sleep(0)

    assert manual_fanout_buffer() == {}
    await flush(w)
    await ack

    assert [(p["driver_id"], p["lat"]) for p in manual_fanout_buffer().values()] == [(bob.pk, lat)]


async def test_a_database_hiccup_is_retried_and_the_ack_still_comes(writer, bob):
    store = CountingStore(fail=2)
    w = writer(store=store)
    ack = send(w, bob, [ping(1)])
    await flush(w)

    assert store.calls == [1, 1, 1]
    assert (await ack) == {"accepted": 1, "duplicates": 0, "rejected": [], "flagged": 0}
    assert await sync_to_async(LocationPing.objects.count)() == 1


async def test_a_database_that_stays_away_fails_the_batch_loudly_and_stores_nothing(writer, bob, caplog):
    store = CountingStore(fail=99)
    w = writer(store=store)
    ack = send(w, bob, [ping(1)])
    await flush(w)

    with pytest.raises(OperationalError):
        await ack
    assert len(store.calls) == 3
    assert "not stored" in caplog.text
    assert w.pending == 0  # not kept: the phone resends it after reconnecting


async def test_a_batch_the_database_refuses_does_not_sink_the_others(writer, bob, acme):
    ann = await sync_to_async(DriverFactory)(org=acme, name="Ann Arbor")

    class RefusesBob(CountingStore):
        def __call__(self, *, batches):
            self.calls.append(len(batches))
            if any(b.driver_id == bob.pk for b in batches):
                raise ValueError("a value the database refuses")
            location_store(batches=batches)

    w = writer(store=RefusesBob())
    bobs, anns = send(w, bob, [ping(1)]), send(w, ann, [ping(1)])
    await flush(w)

    assert (await anns)["accepted"] == 1
    with pytest.raises(ValueError):
        await bobs
    assert await sync_to_async(lambda: list(LocationPing.objects.values_list("driver_id", flat=True)))() == [ann.pk]


async def test_memory_is_bounded_sockets_wait_for_room(writer, bob, acme, settings):
    settings.LOCATION_WRITE_MAX_PENDING = 3
    settings.LOCATION_WRITE_TICK_S = 0.01
    ann = await sync_to_async(DriverFactory)(org=acme, name="Ann Arbor")
    w = writer()
    first = send(w, bob, [ping(3), ping(2)])
    second = send(w, ann, [ping(3), ping(2)])
    await asyncio.sleep(0.1)

    assert w.pending == 2  # Ann's batch waits outside the buffer
    await flush(w)
    await asyncio.sleep(0.1)
    assert w.pending == 2  # now it is in
    await flush(w)

    assert [(await a)["accepted"] for a in (first, second)] == [2, 2]


async def test_one_batch_larger_than_the_bound_still_goes_through_alone(writer, bob, settings):
    settings.LOCATION_WRITE_MAX_PENDING = 2
    w = writer()
    ack = send(w, bob, [ping(s) for s in (5, 4, 3, 2)])
    await flush(w)

    assert (await ack)["accepted"] == 4


async def test_a_batch_with_nothing_valid_is_answered_without_waiting(writer, bob):
    w = writer()

    ack = await asyncio.wait_for(w.submit(org_id=bob.org_id, driver_id=bob.pk, pings=[{"lat": 91}, "x"]), 1)

    assert [r["code"] for r in ack["rejected"]] == ["invalid_coordinates", "bad_ping"]
    assert w.pending == 0


@pytest.fixture
def manual_fanout_buffer():
    """What the fan-out holds for Acme's consoles, by driver (the fan-out thread is off in tests)."""
    fanout.coalescer.discard_pending()

    def buffered():
        with fanout.coalescer._lock:
            return {d: position for drivers in fanout.coalescer._pending.values()
                    for d, (_, position) in drivers.items()}

    yield buffered
    fanout.coalescer.discard_pending()


