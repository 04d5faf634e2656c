"""Factories for the data model. Services are used where they set up invariants
(organizations get their event counter, members their membership)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from apps.accounts.models import Organization
from apps.accounts.services import member_create, organization_create
from apps.dispatch.models import Driver, Hub, Order, OrderItem, Vehicle

PASSWORD = "correct-horse-battery"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return organization_create(name=kwargs["name"], slug=kwargs["slug"], timezone_name="Europe/Berlin")


def member(org, username: str, role: str):
    return member_create(org=org, username=username, password=PASSWORD, role=role,
                         first_name=username.title()).user


class HubFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hub

    name = "Berlin Mitte Depot"
    code = factory.Sequence(lambda n: f"BER{n}")
    timezone = "Europe/Berlin"
    address_line1 = "Invalidenstraße 50"
    city = "Berlin"
    postal_code = "10557"
    country = "DE"
    lat = 52.5290
    lng = 13.3726
    opening_hours = {"mon": [["06:00", "20:00"]]}


class VehicleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vehicle

    name = factory.Sequence(lambda n: f"Van {n}")
    plate = factory.Sequence(lambda n: f"B-LM {1000 + n}")
    type = "van"
    capacity_weight_kg = Decimal("800")
    capacity_volume_l = Decimal("6000")
    capacity_parcels = 120
    skills = []


class DriverFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Driver

    name = factory.Sequence(lambda n: f"Driver {n}")
    phone = "+4915112345678"
    shift_start = time(8, 0)
    shift_end = time(17, 0)
    user = factory.LazyAttribute(
        lambda o: member(o.org, f"drv{get_user_model().objects.count()}-{o.org.slug}", "driver")
    )


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        skip_postgeneration_save = True

    external_id = factory.Sequence(lambda n: f"ORD-{n:05d}")
    source = "api"
    customer_name = "Erika Mustermann"
    customer_phone = "+4930123456"
    address_line1 = "Torstraße 1"
    city = "Berlin"
    postal_code = "10119"
    country = "DE"
    lat = 52.5290
    lng = 13.4010
    geocode_confidence = "exact"
    window_start = factory.LazyFunction(lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    window_end = factory.LazyAttribute(lambda o: o.window_start + timedelta(hours=3))
    total_weight_kg = Decimal("2.5")
    total_volume_l = Decimal("10")
    parcel_count = 1
    content_hash = factory.Sequence(lambda n: f"{n:064d}")

    @factory.post_generation
    def items(obj, create, extracted, **kwargs):
        if create:
            OrderItem.objects.create(order=obj, sku="SKU-1", quantity=1, weight_kg=Decimal("2.5"), volume_l=Decimal("10"))


def order_payload(**overrides) -> dict:
    """A valid order as a partner would POST it."""
    body = {
        "external_id": "SHOP-1001",
        "source": "api",
        "reference": "#1001",
        "customer_name": "Erika Mustermann",
        "customer_phone": "+4930123456",
        "customer_email": "erika@example.com",
        "address_line1": "Torstraße 1",
        "city": "Berlin",
        "postal_code": "10119",
        "country": "DE",
        "lat": 52.529,
        "lng": 13.401,
        "window_start": "2026-11-23T09:00:00+01:00",
        "window_end": "2026-11-23T12:00:00+01:00",
        "service_time_s": 240,
        "instructions": "Ring twice",
        "priority": 1,
        "pod_requirements": ["photo", "signature"],
        "items": [{"sku": "MUG-RED", "description": "Red mug", "quantity": 2, "weight_kg": 0.4, "volume_l": 1.2}],
    }
    body.update(overrides)
    return body
