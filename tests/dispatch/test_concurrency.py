"""Races that happen in a real depot, run on real threads (PostgreSQL in CI)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.accounts.actor import system_actor
from apps.common.exceptions import InvalidTransition
from apps.dispatch.inputs import OrderIn, RouteIn
from apps.dispatch.models import Order, Stop
from apps.dispatch.services.orders import order_bulk_create, order_cancel
from apps.dispatch.services.routes import route_create, route_publish
from apps.dispatch.services.stops import stop_complete
from apps.events.models import Event
from tests.factories import OrderFactory, order_payload


def _race(*calls):
    """Run the calls at the same moment on their own connections; return what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))
def test_a_driver_completing_while_dispatch_cancels_ends_with_exactly_one_winner(acme, acme_hub, bob, acme_van, attempt):
    actor = system_actor(acme)
    order = OrderFactory(org=acme)
    route = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
        hub=acme_hub.pk, date="2026-11-23", driver=bob.pk, vehicle=acme_van.pk, orders=[order.pk])))
    stop = Stop.objects.get(route=route)

    completed, cancelled = _race(lambda: stop_complete(actor=actor, stop=stop),
                                 lambda: order_cancel(actor=actor, order=order))

    failures = [r for r in (completed, cancelled) if isinstance(r, Exception)]
    assert len(failures) == 1, (completed, cancelled)
    assert isinstance(failures[0], InvalidTransition), repr(failures[0])
    order.refresh_from_db()
    assert order.state in ("completed", "cancelled")
    sequences = list(Event.objects.filter(org=acme).values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))


@pytest.mark.django_db(transaction=True)
def test_two_partners_posting_the_same_order_at_once_create_it_once(acme):
    actor = system_actor(acme)
    data = OrderIn.model_validate(order_payload())

    first, second = _race(lambda: order_bulk_create(actor=actor, orders=[data]),
                          lambda: order_bulk_create(actor=actor, orders=[data]))

    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    assert Order.objects.filter(org=acme).count() == 1
    assert sorted([first[0].created, second[0].created]) == [False, True]
    assert Event.objects.filter(org=acme, type="order.created").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_share_or_skip_a_sequence_number(acme):
    actor = system_actor(acme)
    batches = [[OrderIn.model_validate(order_payload(external_id=f"T{t}-{i}")) for i in range(20)] for t in range(4)]

    results = _race(*[lambda b=b: order_bulk_create(actor=actor, orders=b) for b in batches])

    assert not any(isinstance(r, Exception) for r in results), results
    sequences = sorted(Event.objects.filter(org=acme).values_list("sequence", flat=True))
    assert sequences == list(range(1, 81))


@pytest.mark.django_db(transaction=True)
def test_a_driver_working_a_stop_does_not_hold_up_rows_that_only_reference_its_route(acme, acme_hub, bob, acme_van):
    """While a completion holds its route and stop, another transaction can still insert
    a row pointing at them (its foreign-key check takes FOR KEY SHARE): waiting there is
    how completions and the event counter deadlocked under load."""
    from django.db import transaction

    from apps.dispatch.services.stops import _lock
    from apps.eta.models import StopPrediction

    if connection.vendor != "postgresql":
        pytest.skip("row lock strengths are PostgreSQL's; CI runs this on PostgreSQL")
    actor = system_actor(acme)
    first, second = OrderFactory(org=acme), OrderFactory(org=acme)
    route = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
        hub=acme_hub.pk, date="2026-11-23", driver=bob.pk, vehicle=acme_van.pk, orders=[first.pk, second.pk])))
    working, other = Stop.objects.filter(route=route).order_by("sequence")
    StopPrediction.objects.filter(stop__route=route).delete()
    locked, release = threading.Event(), threading.Event()

    def complete_slowly():
        try:
            with transaction.atomic():
                _lock(working)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=complete_slowly)
    holder.start()
    try:
        assert locked.wait(10)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            StopPrediction.objects.create(stop=other, org=acme, route=route)
            StopPrediction.objects.create(stop=working, org=acme, route=route)
    finally:
        release.set()
        holder.join(10)
    assert StopPrediction.objects.filter(route=route).count() == 2
