"""The hubs API: /api/v1/hubs/ (apps/dispatch/api/fleet.py, services/fleet.py hub_*)."""

from __future__ import annotations

import pytest

from apps.dispatch.models import Hub
from apps.events.models import Event
from tests.factories import HubFactory

URL = "/api/v1/hubs/"


def detail(hub_id: int) -> str:
    return f"{URL}{hub_id}/"


def hub_payload(**overrides) -> dict:
    body = {
        "name": "Hamburg Hafen Depot",
        "code": "HAM1",
        "timezone": "Europe/Berlin",
        "address_line1": "Am Sandtorkai 1",
        "city": "Hamburg",
        "postal_code": "20457",
        "country": "de",
        "lat": 53.5436,
        "lng": 9.9893,
        "opening_hours": {"mon": [["06:00", "20:00"]], "sat": [["08:00", "12:00"]]},
    }
    body.update(overrides)
    return body


@pytest.fixture
def globex_hub(globex):
    return HubFactory(org=globex, name="Globex Springfield Depot", code="GLX1")


# --- list and retrieve ----------------------------------------------------------------


def test_it_lists_only_the_callers_organizations_hubs(as_dave, acme_hub, globex_hub):
    response = as_dave.get(URL)

    assert response.status_code == 200
    assert [h["id"] for h in response.json()["results"]] == [acme_hub.id]


def test_carol_sees_only_globex_hubs(as_carol, acme_hub, globex_hub):
    response = as_carol.get(URL)

    assert [h["code"] for h in response.json()["results"]] == ["GLX1"]


def test_it_retrieves_a_hub(as_dave, acme_hub):
    response = as_dave.get(detail(acme_hub.id))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == acme_hub.id
    assert body["code"] == acme_hub.code
    assert body["timezone"] == "Europe/Berlin"
    assert body["lat"] == pytest.approx(52.529)
    assert set(body) >= {"name", "address_line1", "city", "country", "opening_hours", "created_at", "updated_at"}


def test_another_tenants_hub_is_not_found(as_carol, acme_hub):
    response = as_carol.get(detail(acme_hub.id))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_unknown_hub_id_is_not_found(as_dave, acme_hub):
    assert as_dave.get(detail(acme_hub.id + 1000)).status_code == 404


# --- create -------------------------------------------------------------------------------


def test_it_creates_a_hub_in_the_callers_organization(as_dave, acme, dave):
    response = as_dave.post(URL, hub_payload(), format="json")

    assert response.status_code == 201
    body = response.json()
    hub = Hub.objects.get(pk=body["id"])
    assert hub.org == acme
    assert hub.code == "HAM1"
    assert hub.country == "DE"  # normalized to upper case
    assert body["country"] == "DE"
    assert body["opening_hours"]["sat"] == [["08:00", "12:00"]]


def test_creating_a_hub_records_hub_created_in_the_org(as_dave, acme, dave):
    hub_id = as_dave.post(URL, hub_payload(), format="json").json()["id"]

    event = Event.objects.get(type="hub.created")
    assert event.org == acme
    assert event.subject_type == "hub"
    assert event.subject_id == str(hub_id)
    assert event.actor == f"user:{dave.pk}"
    assert event.payload == {"hub_id": hub_id, "code": "HAM1"}


def test_opening_hours_are_optional(as_dave):
    body = hub_payload()
    del body["opening_hours"]

    response = as_dave.post(URL, body, format="json")

    assert response.status_code == 201
    assert Hub.objects.get(pk=response.json()["id"]).opening_hours == {}  # closed every day until set


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"lat": 91}, "lat"),
        ({"lat": -90.5}, "lat"),
        ({"lng": 180.1}, "lng"),
        ({"lat": "52.5"}, "lat"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"opening_hours": {"mon": [["20:00", "06:00"]]}}, "opening_hours"),
        ({"opening_hours": {"mon": [["09:00", "09:00"]]}}, "opening_hours"),
        ({"opening_hours": {"someday": [["06:00", "20:00"]]}}, "opening_hours.someday"),
        ({"opening_hours": {"mon": [["25:00", "26:00"]]}}, "opening_hours.mon.0.0"),
        ({"country": "DEU"}, "country"),
        ({"code": ""}, "code"),
        ({"code": "X" * 21}, "code"),
        ({"name": "   "}, "name"),
        ({"name": 42}, "name"),
    ],
)
def test_it_refuses_an_invalid_hub_naming_the_field(as_dave, override, field):
    response = as_dave.post(URL, hub_payload(**override), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"], body
    assert Hub.objects.count() == 0
    assert not Event.objects.exists()


def test_opening_hours_mixing_offset_and_local_times_are_a_validation_error(as_dave):
    response = as_dave.post(URL, hub_payload(opening_hours={"mon": [["06:00Z", "20:00"]]}), format="json")

    assert response.status_code == 400
    assert "opening_hours" in str(response.json()["fields"])
    assert Hub.objects.count() == 0


@pytest.mark.parametrize("missing", ["name", "code", "timezone", "address_line1", "city", "country", "lat", "lng"])
def test_it_requires_each_mandatory_field(as_dave, missing):
    body = hub_payload()
    del body[missing]

    response = as_dave.post(URL, body, format="json")

    assert response.status_code == 400
    assert missing in response.json()["fields"]


def test_the_closing_before_opening_message_names_the_day(as_dave):
    response = as_dave.post(URL, hub_payload(opening_hours={"tue": [["18:00", "08:00"]]}), format="json")

    assert response.json()["fields"]["opening_hours"] == ["tue: closing time must be after opening time"]


def test_a_duplicate_code_in_the_same_org_is_a_conflict(as_dave, acme_hub):
    response = as_dave.post(URL, hub_payload(code=acme_hub.code), format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate"
    assert body["field"] == "code"
    assert acme_hub.code in body["message"]
    assert Hub.objects.count() == 1
    assert not Event.objects.filter(type="hub.created").exists()


def test_another_org_may_reuse_a_hub_code(as_carol, acme_hub, globex):
    response = as_carol.post(URL, hub_payload(code=acme_hub.code), format="json")

    assert response.status_code == 201
    assert Hub.objects.get(pk=response.json()["id"]).org == globex


# --- update (PUT) ---------------------------------------------------------------------


def test_it_replaces_a_hub(as_dave, acme_hub, acme):
    response = as_dave.put(detail(acme_hub.id), hub_payload(name="Mitte 2", code=acme_hub.code), format="json")

    assert response.status_code == 200
    acme_hub.refresh_from_db()
    assert acme_hub.name == "Mitte 2"
    assert acme_hub.city == "Hamburg"
    assert acme_hub.org == acme
    assert response.json()["name"] == "Mitte 2"


def test_updating_a_hub_records_hub_updated(as_dave, acme_hub, acme):
    as_dave.put(detail(acme_hub.id), hub_payload(code="NEW1"), format="json")

    event = Event.objects.get(type="hub.updated")
    assert event.org == acme
    assert event.subject_id == str(acme_hub.id)
    assert event.payload == {"hub_id": acme_hub.id, "code": "NEW1"}


def test_put_is_a_full_replacement_so_missing_fields_are_refused(as_dave, acme_hub):
    response = as_dave.put(detail(acme_hub.id), {"name": "Only a name"}, format="json")

    assert response.status_code == 400
    assert {"code", "timezone", "lat", "lng"} <= set(response.json()["fields"])
    acme_hub.refresh_from_db()
    assert acme_hub.name == "Berlin Mitte Depot"


def test_an_invalid_update_changes_nothing(as_dave, acme_hub):
    response = as_dave.put(detail(acme_hub.id), hub_payload(code=acme_hub.code, lat=91), format="json")

    assert response.status_code == 400
    assert "lat" in response.json()["fields"]
    acme_hub.refresh_from_db()
    assert acme_hub.lat == pytest.approx(52.529)
    assert not Event.objects.filter(type="hub.updated").exists()


def test_renaming_a_hub_to_a_code_in_use_is_a_conflict(as_dave, acme, acme_hub):
    other = HubFactory(org=acme, code="OTHER")

    response = as_dave.put(detail(other.id), hub_payload(code=acme_hub.code), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    other.refresh_from_db()
    assert other.code == "OTHER"
    assert other.name == "Berlin Mitte Depot"
    assert not Event.objects.filter(type="hub.updated").exists()


def test_carol_cannot_update_an_acme_hub(as_carol, acme_hub):
    response = as_carol.put(detail(acme_hub.id), hub_payload(code="PWNED"), format="json")

    assert response.status_code == 404
    acme_hub.refresh_from_db()
    assert acme_hub.code != "PWNED"
    assert not Event.objects.exists()


def test_hubs_cannot_be_patched_or_deleted(as_dave, acme_hub):
    assert as_dave.patch(detail(acme_hub.id), {"name": "x"}, format="json").status_code == 405
    assert as_dave.delete(detail(acme_hub.id)).status_code == 405
    assert Hub.objects.filter(pk=acme_hub.pk).exists()
