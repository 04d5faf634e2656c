"""The vehicles API: /api/v1/vehicles/ (apps/dispatch/api/fleet.py, services/fleet.py vehicle_*)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.dispatch.models import Vehicle
from apps.events.models import Event
from tests.factories import HubFactory, VehicleFactory

URL = "/api/v1/vehicles/"


def detail(vehicle_id: int) -> str:
    return f"{URL}{vehicle_id}/"


def vehicle_payload(**overrides) -> dict:
    body = {
        "name": "Cargo bike 7",
        "plate": "",
        "type": "cargo_bike",
        "capacity_weight_kg": 120,
        "capacity_volume_l": 400.5,
        "capacity_parcels": 30,
        "skills": ["refrigerated"],
        "home_hub": None,
        "active": True,
    }
    body.update(overrides)
    return body


@pytest.fixture
def globex_hub(globex):
    return HubFactory(org=globex, name="Globex Springfield Depot", code="GLX1")


@pytest.fixture
def globex_truck(globex, globex_hub):
    return VehicleFactory(org=globex, home_hub=globex_hub, name="Globex truck", plate="GLX 1")


# --- list and retrieve ----------------------------------------------------------------


def test_it_lists_only_the_callers_organizations_vehicles(as_dave, acme_van, globex_truck):
    response = as_dave.get(URL)

    assert response.status_code == 200
    assert [v["id"] for v in response.json()["results"]] == [acme_van.id]


def test_it_retrieves_a_vehicle(as_dave, acme_van, acme_hub):
    response = as_dave.get(detail(acme_van.id))

    assert response.status_code == 200
    body = response.json()
    assert body["plate"] == acme_van.plate
    assert body["home_hub"] == acme_hub.id
    assert body["capacity_parcels"] == 120
    assert Decimal(body["capacity_weight_kg"]) == Decimal(800)


def test_another_tenants_vehicle_is_not_found(as_carol, acme_van):
    response = as_carol.get(detail(acme_van.id))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- create -------------------------------------------------------------------------------


def test_it_creates_a_vehicle_in_the_callers_organization(as_dave, acme, acme_hub):
    response = as_dave.post(URL, vehicle_payload(plate="B-LM 42", home_hub=acme_hub.id), format="json")

    assert response.status_code == 201
    vehicle = Vehicle.objects.get(pk=response.json()["id"])
    assert vehicle.org == acme
    assert vehicle.home_hub == acme_hub
    assert vehicle.type == "cargo_bike"
    assert vehicle.capacity_volume_l == Decimal("400.5")
    assert vehicle.skills == ["refrigerated"]


def test_creating_a_vehicle_records_vehicle_created_in_the_org(as_dave, acme, dave):
    vehicle_id = as_dave.post(URL, vehicle_payload(), format="json").json()["id"]

    event = Event.objects.get(type="vehicle.created")
    assert event.org == acme
    assert event.subject_type == "vehicle"
    assert event.subject_id == str(vehicle_id)
    assert event.actor == f"user:{dave.pk}"
    assert event.payload == {"vehicle_id": vehicle_id}


def test_a_vehicle_gets_sensible_defaults(as_dave):
    body = vehicle_payload()
    for optional in ("plate", "type", "skills", "home_hub", "active"):
        del body[optional]

    response = as_dave.post(URL, body, format="json")

    assert response.status_code == 201
    created = response.json()
    assert (created["type"], created["plate"], created["skills"], created["home_hub"], created["active"]) == \
        ("van", "", [], None, True)


def test_many_vehicles_may_have_no_plate(as_dave):
    first = as_dave.post(URL, vehicle_payload(plate=""), format="json")
    second = as_dave.post(URL, vehicle_payload(plate=""), format="json")

    assert (first.status_code, second.status_code) == (201, 201)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"capacity_parcels": -1}, "capacity_parcels"),
        ({"capacity_parcels": "12"}, "capacity_parcels"),
        ({"capacity_parcels": 1.5}, "capacity_parcels"),
        ({"capacity_weight_kg": -0.5}, "capacity_weight_kg"),
        ({"capacity_weight_kg": "120"}, "capacity_weight_kg"),
        ({"capacity_volume_l": -1}, "capacity_volume_l"),
        ({"capacity_volume_l": 100001}, "capacity_volume_l"),
        ({"capacity_weight_kg": True}, "capacity_weight_kg"),
        ({"type": "spaceship"}, "type"),
        ({"plate": "P" * 21}, "plate"),
        ({"skills": [""]}, "skills.0"),
        ({"skills": "refrigerated"}, "skills"),
        ({"home_hub": "1"}, "home_hub"),
        ({"active": "yes"}, "active"),
        ({"name": ""}, "name"),
        ({"wheels": 4}, "wheels"),
    ],
)
def test_it_refuses_an_invalid_vehicle_naming_the_field(as_dave, override, field):
    response = as_dave.post(URL, vehicle_payload(**override), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"], body
    assert Vehicle.objects.count() == 0
    assert not Event.objects.exists()


def test_a_capacity_is_never_silently_rounded(as_dave):
    response = as_dave.post(URL, vehicle_payload(capacity_weight_kg=1.125), format="json")

    if response.status_code == 400:
        assert "capacity_weight_kg" in response.json()["fields"]
    else:
        assert Vehicle.objects.get(pk=response.json()["id"]).capacity_weight_kg == Decimal("1.125")


@pytest.mark.parametrize("missing", ["name", "capacity_weight_kg", "capacity_volume_l", "capacity_parcels"])
def test_it_requires_each_mandatory_field(as_dave, missing):
    body = vehicle_payload()
    del body[missing]

    response = as_dave.post(URL, body, format="json")

    assert response.status_code == 400
    assert missing in response.json()["fields"]


def test_a_duplicate_plate_in_the_same_org_is_a_conflict(as_dave, acme_van):
    response = as_dave.post(URL, vehicle_payload(plate=acme_van.plate), format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate"
    assert body["field"] == "plate"
    assert Vehicle.objects.count() == 1
    assert not Event.objects.filter(type="vehicle.created").exists()


def test_another_org_may_reuse_a_plate(as_carol, acme_van, globex):
    response = as_carol.post(URL, vehicle_payload(plate=acme_van.plate), format="json")

    assert response.status_code == 201
    assert Vehicle.objects.get(pk=response.json()["id"]).org == globex


def test_another_tenants_hub_as_home_hub_is_no_such_hub(as_dave, globex_hub):
    response = as_dave.post(URL, vehicle_payload(home_hub=globex_hub.id), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["fields"] == {"home_hub": ["No such hub."]}
    assert "Globex" not in str(body)
    assert Vehicle.objects.count() == 0


def test_a_missing_hub_reads_the_same_as_another_tenants(as_dave, acme, globex_hub):
    foreign = as_dave.post(URL, vehicle_payload(home_hub=globex_hub.id), format="json").json()
    missing = as_dave.post(URL, vehicle_payload(home_hub=globex_hub.id + 1000), format="json").json()

    assert foreign == missing


# --- update (PUT) ---------------------------------------------------------------------


def test_it_replaces_a_vehicle(as_dave, acme_van, acme):
    response = as_dave.put(detail(acme_van.id),
                           vehicle_payload(name="Van 1 (retired)", plate=acme_van.plate, active=False), format="json")

    assert response.status_code == 200
    acme_van.refresh_from_db()
    assert acme_van.name == "Van 1 (retired)"
    assert acme_van.active is False
    assert acme_van.home_hub is None  # PUT replaces: home_hub was sent as null
    assert acme_van.org == acme


def test_updating_a_vehicle_records_vehicle_updated(as_dave, acme_van, acme):
    as_dave.put(detail(acme_van.id), vehicle_payload(plate=acme_van.plate), format="json")

    event = Event.objects.get(type="vehicle.updated")
    assert event.org == acme
    assert event.subject_id == str(acme_van.id)


def test_an_invalid_update_changes_nothing(as_dave, acme_van):
    response = as_dave.put(detail(acme_van.id), vehicle_payload(capacity_parcels=-5), format="json")

    assert response.status_code == 400
    assert "capacity_parcels" in response.json()["fields"]
    acme_van.refresh_from_db()
    assert acme_van.capacity_parcels == 120
    assert not Event.objects.filter(type="vehicle.updated").exists()


def test_changing_the_plate_to_one_in_use_is_a_conflict(as_dave, acme, acme_van):
    other = VehicleFactory(org=acme, plate="B-LM 9999")

    response = as_dave.put(detail(other.id), vehicle_payload(plate=acme_van.plate), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    other.refresh_from_db()
    assert other.plate == "B-LM 9999"
    assert not Event.objects.filter(type="vehicle.updated").exists()


def test_moving_a_vehicle_to_another_tenants_hub_is_refused(as_dave, acme_van, acme_hub, globex_hub):
    response = as_dave.put(detail(acme_van.id), vehicle_payload(plate=acme_van.plate, home_hub=globex_hub.id),
                           format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"home_hub": ["No such hub."]}
    acme_van.refresh_from_db()
    assert acme_van.home_hub == acme_hub


def test_carol_cannot_update_an_acme_vehicle(as_carol, acme_van):
    response = as_carol.put(detail(acme_van.id), vehicle_payload(name="Stolen"), format="json")

    assert response.status_code == 404
    acme_van.refresh_from_db()
    assert acme_van.name != "Stolen"
    assert not Event.objects.exists()


def test_vehicles_cannot_be_patched_or_deleted(as_dave, acme_van):
    assert as_dave.patch(detail(acme_van.id), {"name": "x"}, format="json").status_code == 405
    assert as_dave.delete(detail(acme_van.id)).status_code == 405
    assert Vehicle.objects.filter(pk=acme_van.pk).exists()
