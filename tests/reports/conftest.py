"""A small delivery history whose every KPI is computed by hand in the tests.

Acme (Europe/Berlin), one hub, Bob and Dan driving, orders from two partners ("shop"
and "erp"). All times UTC; each action happens at its own frozen time.

Monday 23 November (D1)
  R1, Bob: leaves the hub 09:30 (location history: 09:30 hub, 09:35 +1 km north,
           09:40 +2 km, 10:20 still there)
    o1 shop  window 09-12, needs notes  ETA 09:45, arrives 09:50, delivered 09:55 with a note
    o2 shop  window 09-12               ETA 10:20, fails 10:30 (recipient absent)
    o4 erp   window 09-12               cancelled 11:00 while on the route (never attempted)
    o3 erp   window 09-12, needs photo  ETA 12:00, delivered 12:30 (late; no photo)
  R2, Dan:
    o6 erp   no window, no prediction   arrives 14:00, delivered 14:05
    o5 shop  window 13-15               delivered 13:30 on the device, OFFLINE: synced
                                        Tuesday 08:00 (ETA 13:20)
Tuesday 24 November (D2)
  o2 rescheduled (window moved to D2 09-12)
  R3, Bob:
    o2 shop (re-attempt)                ETA 09:50, delivered 10:00
  o8 shop  cancelled 09:00 before planning
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Order, Stop
from apps.dispatch.services.orders import order_cancel, order_reschedule
from apps.dispatch.services.routes import route_create, route_publish, route_start
from apps.dispatch.services.stops import stop_arrive, stop_complete, stop_fail
from apps.reports.summary import summary_rebuild_day
from apps.tracking.models import LocationPing, PingStatus
from tests.factories import DriverFactory, OrderFactory, VehicleFactory

D1, D2 = date(2026, 11, 23), date(2026, 11, 24)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


HUB = (52.5290, 13.3726)
PINGS = [(at(D1, 9, 30), 52.5290, 13.3726), (at(D1, 9, 35), 52.5380, 13.3726),
         (at(D1, 9, 40), 52.5470, 13.3726), (at(D1, 10, 20), 52.5470, 13.3726)]
COORDS = {"o1": (52.5300, 13.4010), "o2": (52.5350, 13.4100), "o3": (52.5200, 13.3900), "o4": (52.5250, 13.4200),
          "o5": (52.5000, 13.4000), "o6": (52.5100, 13.4300), "o8": (52.5150, 13.4150)}


def _predict(stop: Stop, eta: datetime | None, *, planned: bool = True) -> Stop:
    """What the ETA was just before the driver got there."""
    fields = {"eta": eta}
    if not planned:
        fields["planned_arrival"] = None
    Stop.objects.filter(pk=stop.pk).update(**fields)
    stop.refresh_from_db()
    return stop


def _order(org, hub, key: str, source: str, *, window: tuple[datetime, datetime] | None, pod=(), **extra) -> Order:
    lat, lng = COORDS[key]
    return OrderFactory(org=org, hub=hub, source=source, external_id=f"{source.upper()}-{key}", reference=key,
                        lat=lat, lng=lng, window_start=window[0] if window else None,
                        window_end=window[1] if window else None, pod_requirements=list(pod), **extra)


def build_history(acme, acme_hub, acme_van, bob, *, sync_offline_stop: bool = True) -> dict:
    actor = system_actor(acme)
    dan = DriverFactory(org=acme, name="Dan Driver", home_hub=acme_hub)
    dans_van = VehicleFactory(org=acme, home_hub=acme_hub)
    morning = (at(D1, 9), at(D1, 12))
    o = {
        "o1": _order(acme, acme_hub, "o1", "shop", window=morning, pod=["notes"]),
        "o2": _order(acme, acme_hub, "o2", "shop", window=morning),
        "o3": _order(acme, acme_hub, "o3", "erp", window=morning, pod=["photo"]),
        "o4": _order(acme, acme_hub, "o4", "erp", window=morning),
        "o5": _order(acme, acme_hub, "o5", "shop", window=(at(D1, 13), at(D1, 15))),
        "o6": _order(acme, acme_hub, "o6", "erp", window=None),
        "o8": _order(acme, acme_hub, "o8", "shop", window=(at(D2, 9), at(D2, 12))),
    }
    with time_machine.travel(at(D1, 7), tick=False):
        r1 = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
            hub=acme_hub.pk, date=D1.isoformat(), driver=bob.pk, vehicle=acme_van.pk,
            orders=[o["o1"].pk, o["o2"].pk, o["o3"].pk, o["o4"].pk])))
        r2 = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
            hub=acme_hub.pk, date=D1.isoformat(), driver=dan.pk, vehicle=dans_van.pk,
            orders=[o["o5"].pk, o["o6"].pk])))
    stop = {k: Stop.objects.get(order=o[k], route__in=[r1, r2]) for k in ("o1", "o2", "o3", "o4", "o5", "o6")}
    for device_time, lat, lng in PINGS:
        LocationPing.objects.create(org=acme, driver=bob, lat=lat, lng=lng, accuracy_m=8, device_time=device_time,
                                    received_at=device_time, status=PingStatus.SHOWN)

    def act(when: datetime, fn, **kwargs):
        with time_machine.travel(when, tick=False):
            return fn(actor=actor, **kwargs)

    act(at(D1, 9, 30), route_start, route=r1)
    _predict(stop["o1"], at(D1, 9, 45))
    act(at(D1, 9, 50), stop_arrive, stop=stop["o1"])
    act(at(D1, 9, 55), stop_complete, stop=stop["o1"], notes="Left with the neighbour")
    _predict(stop["o2"], at(D1, 10, 20))
    act(at(D1, 10, 30), stop_fail, stop=stop["o2"], reason="recipient_absent")
    act(at(D1, 11), order_cancel, order=o["o4"], reason="customer called")
    _predict(stop["o3"], at(D1, 12))
    act(at(D1, 12, 30), stop_complete, stop=stop["o3"])

    _predict(stop["o6"], None, planned=False)
    act(at(D1, 14), stop_arrive, stop=stop["o6"])
    act(at(D1, 14, 5), stop_complete, stop=stop["o6"])

    act(at(D1, 18), order_reschedule, order=Order.objects.get(pk=o["o2"].pk))
    Order.objects.filter(pk=o["o2"].pk).update(window_start=at(D2, 9), window_end=at(D2, 12))

    if sync_offline_stop:
        sync_offline(actor, stop["o5"])

    act(at(D2, 9), order_cancel, order=o["o8"])
    with time_machine.travel(at(D2, 7), tick=False):
        r3 = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
            hub=acme_hub.pk, date=D2.isoformat(), driver=bob.pk, vehicle=acme_van.pk, orders=[o["o2"].pk])))
    stop["o2-retry"] = Stop.objects.get(route=r3)
    _predict(stop["o2-retry"], at(D2, 9, 50))
    act(at(D2, 10), stop_complete, stop=stop["o2-retry"])
    return {"orders": o, "stops": stop, "routes": {"r1": r1, "r2": r2, "r3": r3}, "dan": dan, "bob": bob,
            "actor": actor}


def sync_offline(actor, stop: Stop) -> None:
    """Dan delivered o5 at 13:30 on Monday with no signal; his phone syncs on Tuesday at 08:00."""
    _predict(stop, at(D1, 13, 20))
    with time_machine.travel(at(D2, 8), tick=False):
        stop_complete(actor=actor, stop=stop, occurred_at=at(D1, 13, 30))


@pytest.fixture
def history(acme, acme_hub, acme_van, bob, monkeypatch):
    # The hand-computed figures use the ETAs this history sets on the stops (_predict),
    # so the ETA engine (apps/eta, tested on its own) sits this one out.
    # test_the_eta_at_departure_is_the_prediction_measured adds an engine record and
    # checks the reports prefer it.
    from apps.eta import services as eta_services

    monkeypatch.setattr(eta_services, "eta_route_refresh", lambda **kwargs: None)
    world = build_history(acme, acme_hub, acme_van, bob)
    for day in (D1, D2):
        summary_rebuild_day(org=acme, day=day)
    return world
