"""Bob's published route of three deliveries, and media storage in a temporary folder."""

from __future__ import annotations

import uuid

import pytest

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.services.routes import route_create, route_publish
from tests.factories import OrderFactory

from . import images


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def route(acme, acme_hub, bob, acme_van):
    """Bob's published route: three deliveries in Berlin, no proof required by default."""
    orders = [OrderFactory(org=acme, lat=52.529, lng=13.40 + 0.01 * i) for i in range(3)]
    actor = system_actor(acme)
    route = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date="2026-11-23", driver=bob.pk,
                                                    vehicle=acme_van.pk, orders=[o.pk for o in orders]))
    return route_publish(actor=actor, route=route)


@pytest.fixture
def stops(route):
    return list(Stop.objects.filter(route=route).order_by("sequence").select_related("order"))


def upload(client, data: bytes, *, kind: str = "photo", name: str = "pod.jpg", **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/api/v1/pod/media/", {"file": SimpleUploadedFile(name, data, "image/jpeg"), "kind": kind,
                                              **extra}, format="multipart")


def action(client, type_: str, stop, *, key: str | None = None, **body):
    payload = {"id": key or str(uuid.uuid4()), "type": type_, "stop": stop.pk, **body}
    return client.post("/api/v1/driver/actions/", payload, format="json")


def photo_and_signature(client) -> tuple[str, str]:
    photo = upload(client, images.jpeg()).json()["sha256"]
    signature = upload(client, images.png(), kind="signature", name="sig.png").json()["sha256"]
    return photo, signature
