"""An on-duty driver who stops reporting raises one "location stale" alert per episode,
and the first ping after it records "location resumed". The clock is moved, not waited for."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.accounts.actor import system_actor
from apps.dispatch.services.fleet import driver_set_duty
from apps.events import types as ev
from apps.events.models import Event
from apps.tracking.models import DriverPosition
from apps.tracking.services import location_check_stale, location_receive
from tests.factories import DriverFactory

from .helpers import NOW, ping

pytestmark = pytest.mark.usefixtures("clock")

LOCATION_EVENTS = (ev.DRIVER_LOCATION_STALE, ev.DRIVER_LOCATION_RESUMED)


def on_duty(driver, on=True):
    return driver_set_duty(actor=system_actor(driver.org), driver=driver, on_duty=on)


def report(driver):
    return location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=[ping(1)])


def location_events(org=None):
    qs = Event.objects.filter(type__in=LOCATION_EVENTS).order_by("org_id", "sequence")
    if org is not None:
        qs = qs.filter(org=org)
    return [(e.type, e.subject_type, e.subject_id, e.payload) for e in qs]


def test_a_driver_silent_for_five_minutes_on_duty_raises_one_alert(bob, clock):
    on_duty(bob)

    clock.shift(timedelta(seconds=299))
    assert location_check_stale() == []

    clock.shift(timedelta(seconds=2))
    assert location_check_stale() == [bob.pk]
    assert location_check_stale() == []
    clock.shift(timedelta(minutes=30))
    assert location_check_stale() == []

    assert location_events() == [(ev.DRIVER_LOCATION_STALE, "driver", str(bob.pk),
                                  {"driver_id": bob.pk, "last_ping_at": None, "stale_after_s": 300})]


def test_the_silence_counts_from_the_last_ping(bob, clock):
    on_duty(bob)
    clock.shift(timedelta(minutes=10))
    report(bob)

    clock.shift(timedelta(minutes=4))
    assert location_check_stale() == []
    clock.shift(timedelta(minutes=2))
    assert location_check_stale() == [bob.pk]

    assert location_events()[0][3]["last_ping_at"] == (NOW + timedelta(minutes=10)).isoformat()


def test_the_first_ping_after_the_alert_records_resumed_and_a_new_silence_a_new_alert(bob, clock):
    on_duty(bob)
    clock.shift(timedelta(minutes=6))
    location_check_stale()
    clock.shift(timedelta(minutes=1))

    report(bob)
    report(bob)  # one resumption per episode

    assert DriverPosition.objects.get(driver=bob).stale_since is None
    clock.shift(timedelta(minutes=6))
    assert location_check_stale() == [bob.pk]
    assert [(kind, payload) for kind, _, _, payload in location_events()] == [
        (ev.DRIVER_LOCATION_STALE, {"driver_id": bob.pk, "last_ping_at": None, "stale_after_s": 300}),
        (ev.DRIVER_LOCATION_RESUMED, {"driver_id": bob.pk, "stale_since": (NOW + timedelta(minutes=6)).isoformat(),
                                      "last_ping_at": (NOW + timedelta(minutes=7)).isoformat()}),
        (ev.DRIVER_LOCATION_STALE, {"driver_id": bob.pk, "last_ping_at": (NOW + timedelta(minutes=7)).isoformat(),
                                    "stale_after_s": 300}),
    ]


def test_an_inaccurate_ping_still_counts_as_reporting(bob, clock):
    on_duty(bob)
    clock.shift(timedelta(minutes=4))

    location_receive(org_id=bob.org_id, driver_id=bob.pk, pings=[ping(1, accuracy_m=800)])
    clock.shift(timedelta(minutes=4))

    assert location_check_stale() == []


def test_a_rejected_ping_does_not_count_as_reporting(bob, clock):
    on_duty(bob)
    clock.shift(timedelta(minutes=4))

    location_receive(org_id=bob.org_id, driver_id=bob.pk, pings=[ping(1, lat=91)])
    clock.shift(timedelta(minutes=2))

    assert location_check_stale() == [bob.pk]


def test_going_on_duty_starts_the_clock_even_after_an_old_ping(bob, clock):
    report(bob)  # yesterday's shift, say
    clock.shift(timedelta(hours=3))
    on_duty(bob)

    clock.shift(timedelta(minutes=4))
    assert location_check_stale() == []
    clock.shift(timedelta(minutes=2))
    assert location_check_stale() == [bob.pk]


def test_off_duty_and_deactivated_drivers_are_never_stale(bob, acme, clock):
    gone = DriverFactory(org=acme, name="Gone Driver")
    on_duty(gone)
    gone.active = False
    gone.save()

    clock.shift(timedelta(hours=2))

    assert location_check_stale() == []
    assert location_events() == []


def test_going_off_duty_ends_the_episode_silently(bob, clock):
    on_duty(bob)
    clock.shift(timedelta(minutes=6))
    location_check_stale()
    on_duty(bob, False)

    location_check_stale()
    assert DriverPosition.objects.get(driver=bob).stale_since is None

    on_duty(bob)
    clock.shift(timedelta(minutes=6))
    assert location_check_stale() == [bob.pk]
    assert [kind for kind, *_ in location_events()] == [ev.DRIVER_LOCATION_STALE, ev.DRIVER_LOCATION_STALE]


def test_a_driver_on_duty_without_any_record_of_it_is_stale_at_once(bob):
    bob.on_duty = True
    bob.save()

    assert location_check_stale() == [bob.pk]


def test_the_threshold_is_a_setting(bob, clock, settings):
    settings.LOCATION_STALE_AFTER_S = 60
    on_duty(bob)

    clock.shift(timedelta(seconds=61))

    assert location_check_stale() == [bob.pk]
    assert location_events()[0][3]["stale_after_s"] == 60


def test_each_organization_hears_only_of_its_own_drivers(bob, acme, globex, clock):
    gus = DriverFactory(org=globex, name="Gus Globex")
    on_duty(bob)
    on_duty(gus)

    clock.shift(timedelta(minutes=6))
    location_check_stale()

    assert [subject for _, _, subject, _ in location_events(acme)] == [str(bob.pk)]
    assert [subject for _, _, subject, _ in location_events(globex)] == [str(gus.pk)]


def test_many_silent_drivers_of_one_organization_are_one_transaction(bob, acme, clock):
    others = [DriverFactory(org=acme) for _ in range(3)]
    for driver in [bob, *others]:
        on_duty(driver)

    clock.shift(timedelta(minutes=6))

    assert sorted(location_check_stale()) == sorted(d.pk for d in [bob, *others])
    sequences = list(Event.objects.filter(type=ev.DRIVER_LOCATION_STALE).values_list("sequence", flat=True))
    assert sequences == list(range(sequences[0], sequences[0] + 4))


def test_the_alert_is_published_to_consoles_after_commit(bob, clock, django_capture_on_commit_callbacks):
    on_duty(bob)
    clock.shift(timedelta(minutes=6))

    with django_capture_on_commit_callbacks() as callbacks:
        location_check_stale()

    assert len(callbacks) == 1
