"""The WebSocket endpoints, driven by channels' WebsocketCommunicator."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn, RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.services.orders import order_create
from apps.dispatch.services.routes import route_create, route_publish
from apps.dispatch.services.stops import stop_complete
from apps.events.models import Event
from apps.events.services import NewEvent, events_record
from apps.realtime.consumers import CloseCode, ConsoleConsumer, DriverConsumer
from apps.realtime.groups import org_group
from apps.realtime.messages import event_message
from tests.factories import DriverFactory, OrderFactory, order_payload

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _connect(consumer, path, user):
    communicator = WebsocketCommunicator(consumer.as_asgi(), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


async def _console(user):
    communicator, connected = await _connect(ConsoleConsumer, "/ws/console/", user)
    assert connected
    welcome = await communicator.receive_json_from()
    assert welcome["type"] == "welcome"
    return communicator, welcome


@sync_to_async
def _create_order(org, external_id):
    return order_create(actor=system_actor(org), data=OrderIn.model_validate(order_payload(external_id=external_id)))


@sync_to_async
def _published_route(org, hub, driver, vehicle):
    actor = system_actor(org)
    order = OrderFactory(org=org)
    # Today's: a driver's stream covers today's and yesterday's routes.
    route = route_create(actor=actor, data=RouteIn(hub=hub.pk, date=timezone.now().date().isoformat(),
                                                   driver=driver.pk,
                                                   vehicle=vehicle.pk, orders=[order.pk]))
    return route_publish(actor=actor, route=route)


class TestConnect:
    async def test_an_anonymous_console_is_closed_with_4401(self, db):
        communicator, connected = await _connect(ConsoleConsumer, "/ws/console/", AnonymousUser())

        assert connected
        assert await communicator.receive_output() == {"type": "websocket.close", "code": CloseCode.UNAUTHENTICATED}

    async def test_a_driver_cannot_open_the_console(self, bob):
        communicator, _ = await _connect(ConsoleConsumer, "/ws/console/", bob.user)

        assert (await communicator.receive_output())["code"] == CloseCode.FORBIDDEN

    async def test_a_dispatcher_cannot_open_the_driver_socket(self, dave):
        communicator, _ = await _connect(DriverConsumer, "/ws/driver/", dave)

        assert (await communicator.receive_output())["code"] == CloseCode.FORBIDDEN

    async def test_a_dispatcher_is_welcomed_with_the_log_head(self, dave, acme):
        await _create_order(acme, "W-1")

        communicator, welcome = await _console(dave)

        assert welcome["seq"] == 1
        await communicator.disconnect()

    async def test_a_page_on_another_site_cannot_open_a_socket(self, dave):
        from config.asgi import application

        communicator = WebsocketCommunicator(application, "/ws/console/",
                                             headers=[(b"origin", b"https://evil.example"), (b"host", b"localhost")])

        connected, _ = await communicator.connect()

        assert not connected


class TestResync:
    async def test_hello_with_nothing_gets_a_snapshot(self, dave, acme):
        communicator, _ = await _console(dave)

        await communicator.send_json_to({"type": "hello", "last_seq": 0})
        message = await communicator.receive_json_from()

        assert message["type"] == "snapshot"
        assert {"date", "routes", "drivers", "positions"} <= set(message["data"])
        await communicator.disconnect()

    async def test_a_large_snapshot_comes_as_a_header_pages_and_an_end(self, dave, acme, monkeypatch):
        # A WebSocket message is capped at 1 MiB: a big organization's routes, drivers and
        # positions must not ride in one snapshot, or its console could never connect.
        from apps.realtime import protocol, snapshot_pages

        monkeypatch.setattr(snapshot_pages, "SNAPSHOT_PAGE_BYTES", 400)
        monkeypatch.setattr(snapshot_pages, "SNAPSHOT_WHOLE_MAX_BYTES", 400)
        fleet = [{"driver_id": n, "lat": 52.5, "lng": 13.4, "at": "2026-12-01T10:00:00+00:00"} for n in range(1, 9)]
        drivers = [{"id": n, "name": f"Driver {n}"} for n in range(1, 9)]
        routes = [{"id": n, "name": f"Route {n}", "stops": [{"id": n * 10 + i} for i in range(3)]} for n in (1, 2)]
        monkeypatch.setattr(protocol, "_console_snapshot",
                            lambda ctx: {"date": "2026-12-01", "routes": routes, "drivers": drivers, "positions": fleet})
        communicator, _ = await _console(dave)

        await communicator.send_json_to({"type": "hello", "last_seq": 0})
        header = await communicator.receive_json_from()
        pages = [await communicator.receive_json_from() for _ in range(header["pages"])]
        end = await communicator.receive_json_from()

        assert header["type"] == "snapshot" and header["pages"] >= 3
        assert header["data"] == {"date": "2026-12-01", "routes": [], "drivers": [], "positions": []}
        assert [p["type"] for p in pages] == ["snapshot.page"] * header["pages"]
        assert [p["page"] for p in pages] == list(range(1, header["pages"] + 1))
        assert end == {"type": "snapshot.end", "seq": header["seq"], "pages": header["pages"]}
        assembled = {"routes": [], "drivers": [], "positions": []}
        for page in pages:
            for key, items in page["data"].items():
                assembled[key] += items
        assert assembled == {"routes": routes, "drivers": drivers, "positions": fleet}
        await communicator.disconnect()

    async def test_a_small_snapshot_is_still_one_message(self, dave, acme):
        communicator, _ = await _console(dave)

        await communicator.send_json_to({"type": "hello", "last_seq": 0})
        message = await communicator.receive_json_from()

        assert message["type"] == "snapshot" and "pages" not in message
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    async def test_hello_with_a_recent_sequence_replays_what_was_missed(self, dave, acme):
        for n in range(3):
            await _create_order(acme, f"R-{n}")
        communicator, _ = await _console(dave)

        await communicator.send_json_to({"type": "hello", "last_seq": 1})
        message = await communicator.receive_json_from()

        assert message["type"] == "events" and message["replayed"] is True
        assert [e["seq"] for e in message["events"]] == [2, 3]
        assert message["events"][0]["type"] == "order.created"
        await communicator.disconnect()

    async def test_a_client_far_behind_gets_a_snapshot(self, dave, acme, settings):
        from apps.realtime import protocol

        for n in range(4):
            await _create_order(acme, f"F-{n}")
        communicator, _ = await _console(dave)
        original, protocol.REPLAY_LIMIT = protocol.REPLAY_LIMIT, 2
        try:
            await communicator.send_json_to({"type": "hello", "last_seq": 1})
            message = await communicator.receive_json_from()
        finally:
            protocol.REPLAY_LIMIT = original

        assert message["type"] == "snapshot" and message["seq"] == 4
        await communicator.disconnect()

    async def test_a_client_that_missed_nothing_is_told_so(self, dave, acme):
        await _create_order(acme, "N-1")
        communicator, welcome = await _console(dave)

        await communicator.send_json_to({"type": "hello", "last_seq": welcome["seq"]})

        assert (await communicator.receive_json_from()) == {"type": "events", "events": [], "replayed": True,
                                                             "seq": welcome["seq"]}
        await communicator.disconnect()

    @pytest.mark.parametrize("last_seq", [-1, "3", None, True])
    async def test_a_malformed_hello_is_answered_with_an_error(self, dave, acme, last_seq):
        communicator, _ = await _console(dave)

        await communicator.send_json_to({"type": "hello", "last_seq": last_seq})

        assert (await communicator.receive_json_from())["code"] == "bad_message"
        await communicator.disconnect()


class TestLive:
    async def test_a_committed_change_reaches_the_console_with_its_sequence(self, dave, acme):
        communicator, _ = await _console(dave)

        order = (await _create_order(acme, "L-1")).order

        message = await communicator.receive_json_from(timeout=2)
        assert message["type"] == "events"
        assert [(e["seq"], e["type"], e["subject_id"]) for e in message["events"]] == [
            (1, "order.created", str(order.pk))]
        await communicator.disconnect()

    async def test_carol_never_receives_acmes_traffic(self, dave, carol, acme):
        acme_console, _ = await _console(dave)
        globex_console, _ = await _console(carol)

        await _create_order(acme, "ISO-1")

        assert (await acme_console.receive_json_from(timeout=2))["type"] == "events"
        assert await globex_console.receive_nothing(timeout=0.3)
        await acme_console.disconnect()
        await globex_console.disconnect()

    async def test_a_lost_push_is_filled_from_the_log(self, dave, acme):
        communicator, _ = await _console(dave)
        await communicator.send_json_to({"type": "hello", "last_seq": 0})
        await communicator.receive_json_from()  # snapshot at seq 0

        @sync_to_async
        def record_silently(n):
            # Recorded and committed, but its push never arrives (as when a channel is full).
            with transaction.atomic():
                rows = events_record(org=acme, actor="system",
                                     events=[NewEvent("hub.updated", "hub", i) for i in range(n)])
                transaction.get_connection().run_on_commit = []
            return rows

        missed = await record_silently(2)
        newer = await record_silently(1)
        await get_channel_layer().group_send(org_group(acme.pk), {
            "type": "lastmile.events", "events": [event_message(newer[0])]})

        delivered = []
        while len(delivered) < 3:
            message = await communicator.receive_json_from(timeout=2)
            delivered += [e["seq"] for e in message["events"]]
        assert delivered == [missed[0].sequence, missed[1].sequence, newer[0].sequence]
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    async def test_the_heartbeat_catches_a_lost_last_push(self, dave, acme, settings):
        settings.REALTIME_HEARTBEAT_S = 0.2
        communicator, _ = await _console(dave)

        @sync_to_async
        def record_silently():
            with transaction.atomic():
                rows = events_record(org=acme, actor="system", events=[NewEvent("hub.updated", "hub", 1)])
                transaction.get_connection().run_on_commit = []
            return rows[0]

        lost = await record_silently()

        messages = [await communicator.receive_json_from(timeout=2) for _ in range(2)]
        events = [m for m in messages if m["type"] == "events"]
        assert [e["seq"] for m in events for e in m["events"]] == [lost.sequence]
        assert (await communicator.receive_json_from(timeout=2)) == {"type": "heartbeat", "seq": lost.sequence}
        await communicator.disconnect()

    async def test_duplicated_pushes_are_delivered_once(self, dave, acme):
        communicator, _ = await _console(dave)
        created = await _create_order(acme, "D-1")
        await communicator.receive_json_from(timeout=2)
        event = await sync_to_async(Event.objects.get)(subject_id=str(created.order.pk))

        await get_channel_layer().group_send(org_group(acme.pk), {
            "type": "lastmile.events", "events": [event_message(event)]})

        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()


class TestDriver:
    async def test_a_driver_hears_about_his_route_and_not_about_others(self, bob, acme, acme_hub, acme_van):
        other = await sync_to_async(DriverFactory)(org=acme, home_hub=acme_hub)
        route = await _published_route(acme, acme_hub, bob, acme_van)
        communicator, connected = await _connect(DriverConsumer, "/ws/driver/", bob.user)
        assert connected
        await communicator.receive_json_from()  # welcome

        await _published_route(acme, acme_hub, other, acme_van)
        stop = await sync_to_async(Stop.objects.get)(route=route)
        await sync_to_async(stop_complete)(actor=system_actor(acme), stop=stop)

        message = await communicator.receive_json_from(timeout=2)
        types = [e["type"] for e in message["events"]]
        assert "stop.completed" in types and "route.completed" in types
        assert all(e["payload"].get("route_id") in (route.pk, None) for e in message["events"])
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    async def test_a_driver_snapshot_holds_his_published_routes(self, bob, acme, acme_hub, acme_van):
        route = await _published_route(acme, acme_hub, bob, acme_van)
        communicator, _ = await _connect(DriverConsumer, "/ws/driver/", bob.user)
        await communicator.receive_json_from()

        await communicator.send_json_to({"type": "hello", "last_seq": 0})
        message = await communicator.receive_json_from()

        assert message["type"] == "snapshot"
        assert [r["id"] for r in message["data"]["routes"]] == [route.pk]
        await communicator.disconnect()

    async def test_a_deactivated_driver_is_disconnected(self, bob, dave, acme):
        from apps.accounts.permissions import Actor
        from apps.accounts.roles import ROLE_SCOPES
        from apps.dispatch.inputs import DriverPatch
        from apps.dispatch.services.fleet import driver_update

        communicator, _ = await _connect(DriverConsumer, "/ws/driver/", bob.user)
        await communicator.receive_json_from()

        actor = Actor(org=acme, scopes=ROLE_SCOPES["dispatcher"], user_id=dave.pk, role="dispatcher")
        await sync_to_async(driver_update)(actor=actor, driver=bob, patch=DriverPatch(active=False))

        messages = [await communicator.receive_json_from(timeout=2)]
        while messages[-1]["type"] != "revoked":
            messages.append(await communicator.receive_json_from(timeout=2))
        assert (await communicator.receive_output(timeout=2)) == {"type": "websocket.close",
                                                                   "code": CloseCode.REVOKED}

    async def test_an_inactive_driver_cannot_connect(self, bob):
        bob.active = False
        await sync_to_async(bob.save)()

        communicator, _ = await _connect(DriverConsumer, "/ws/driver/", bob.user)

        assert (await communicator.receive_output())["code"] == CloseCode.FORBIDDEN


class TestRemoval:
    async def test_a_removed_dispatcher_is_disconnected_and_cannot_come_back(self, dave, acme):
        from apps.accounts.services import member_remove

        communicator, _ = await _console(dave)

        membership = await sync_to_async(lambda: dave.membership)()
        await sync_to_async(member_remove)(membership=membership)

        message = await communicator.receive_json_from(timeout=2)
        assert message == {"type": "revoked", "message": "You were removed from the organization."}
        assert (await communicator.receive_output(timeout=2)) == {"type": "websocket.close", "code": CloseCode.REVOKED}
        await sync_to_async(dave.refresh_from_db)()
        assert dave.is_active is False
