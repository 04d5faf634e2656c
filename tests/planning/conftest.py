"""A day at Acme's Berlin hub: three vans and a dozen orders across Mitte."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.factories import DriverFactory, OrderFactory, VehicleFactory

DAY = date(2026, 11, 23)


@pytest.fixture
def day():
    return DAY


@pytest.fixture
def fleet(acme, acme_hub, bob):
    """Bob and two more drivers, each with a van, all based at the hub."""
    others = [DriverFactory(org=acme, name=name, home_hub=acme_hub,
                            current_vehicle=VehicleFactory(org=acme, home_hub=acme_hub))
              for name in ("Dana Dorn", "Emil Ernst")]
    return [bob, *others]


def make_orders(org, hub, count, *, seed=1, start=datetime(2026, 11, 23, 8, 0, tzinfo=UTC), **overrides):
    rng = random.Random(seed)
    orders = []
    for i in range(count):
        window_start = start + timedelta(minutes=30 * rng.randrange(0, 8))
        fields = {"org": org, "hub": hub, "lat": 52.50 + rng.uniform(0, 0.06), "lng": 13.35 + rng.uniform(0, 0.1),
                  "window_start": window_start, "window_end": window_start + timedelta(hours=3), "service_time_s": 180}
        fields.update(overrides)
        orders.append(OrderFactory(**fields, external_id=f"DAY-{seed}-{i}"))
    return orders


@pytest.fixture
def day_orders(acme, acme_hub):
    return make_orders(acme, acme_hub, 12)
