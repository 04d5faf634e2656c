"""POST /api/v1/locations/: a driver's offline backlog. Only drivers, only their own."""

from __future__ import annotations

import pytest

from apps.accounts.services import api_client_create
from apps.tracking.models import DriverPosition, LocationPing
from tests.conftest import client_for
from tests.factories import DriverFactory

from .helpers import north_of_depot, ping

pytestmark = [pytest.mark.urls("tests.tracking.urls"), pytest.mark.usefixtures("clock")]

URL = "/api/v1/locations/"


def test_bob_uploads_his_backlog_and_gets_the_acknowledgement(as_bob, bob):
    backlog = [ping(30), ping(20, lat=north_of_depot(50)[0]), ping(10, accuracy_m=400), "junk"]

    response = as_bob.post(URL, {"pings": backlog}, format="json")

    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "flagged": 1, "rejected": [
        {"index": 3, "code": "bad_ping", "message": "A ping must be a JSON object."}]}
    assert LocationPing.objects.filter(driver=bob).count() == 3
    assert DriverPosition.objects.get(driver=bob).lat == north_of_depot(50)[0]


def test_uploading_the_same_backlog_again_is_harmless(as_bob, bob):
    backlog = [ping(30), ping(20)]
    as_bob.post(URL, {"pings": backlog}, format="json")

    response = as_bob.post(URL, {"pings": backlog}, format="json")

    assert response.json() == {"accepted": 0, "duplicates": 2, "flagged": 0, "rejected": []}


def test_an_empty_backlog_is_fine(as_bob):
    response = as_bob.post(URL, {"pings": []}, format="json")

    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0, "flagged": 0, "rejected": []}


@pytest.mark.parametrize("body", [{"pings": {"lat": 1}}, {"ping": []}, {}, [ping()]],
                         ids=["pings not a list", "misspelt key", "empty object", "a bare list"])
def test_a_body_without_a_list_of_pings_is_a_400(as_bob, body):
    response = as_bob.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "pings" in response.json()["fields"]


def test_a_body_that_is_not_json_is_a_400(as_bob):
    response = as_bob.post(URL, "not json", content_type="application/json")

    assert response.status_code == 400


@pytest.mark.parametrize("persona", ["dave", "alice", "carol"])
def test_dispatchers_and_admins_cannot_post_locations(request, bob, persona):
    client = client_for(request.getfixturevalue(persona))

    response = client.post(URL, {"pings": [ping()]}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not LocationPing.objects.exists()


def test_an_api_key_with_stops_write_cannot_post_locations(acme, bob):
    from rest_framework.test import APIClient

    _, key = api_client_create(org=acme, name="Acme telematics", scopes=["stops:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    response = client.post(URL, {"pings": [ping()]}, format="json")

    assert response.status_code == 403


def test_an_anonymous_caller_is_refused(anonymous):
    response = anonymous.post(URL, {"pings": [ping()]}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_reading_is_not_offered(as_bob):
    assert as_bob.get(URL).status_code == 405


def test_the_driver_comes_from_the_login_not_the_body(as_bob, bob, acme):
    ann = DriverFactory(org=acme, name="Ann Arbor")

    as_bob.post(URL, {"pings": [ping(5, driver_id=ann.pk)], "driver_id": ann.pk}, format="json")

    assert list(LocationPing.objects.values_list("driver_id", "org_id")) == [(bob.pk, acme.pk)]
    assert not DriverPosition.objects.filter(driver=ann).exists()


def test_a_globex_driver_lands_in_globex_only(globex, acme, bob):
    gus = DriverFactory(org=globex, name="Gus Globex")

    response = client_for(gus.user).post(URL, {"pings": [ping(5)]}, format="json")

    assert response.status_code == 200
    assert list(LocationPing.objects.values_list("org_id", "driver_id")) == [(globex.pk, gus.pk)]
    assert DriverPosition.objects.get(driver=gus).org_id == globex.pk
    assert not DriverPosition.objects.filter(org=acme).exists()


def test_a_deactivated_driver_cannot_log_in_and_stored_nothing(client, bob):
    from apps.accounts.actor import system_actor
    from apps.dispatch.inputs import DriverPatch
    from apps.dispatch.services.fleet import driver_update
    from tests.factories import PASSWORD

    driver_update(actor=system_actor(bob.org), driver=bob, patch=DriverPatch(active=False))

    assert not client.login(username=bob.user.username, password=PASSWORD)
    assert client.post(URL, {"pings": [ping(5)]}, content_type="application/json").status_code == 401
    assert not LocationPing.objects.exists()


def test_a_session_that_outlived_the_deactivation_stores_nothing(bob):
    bob.active = False  # the service also deactivates the login; belt and braces
    bob.save()

    response = client_for(bob.user).post(URL, {"pings": [ping(5)]}, format="json")

    assert [r["code"] for r in response.json()["rejected"]] == ["driver_not_allowed"]
    assert not LocationPing.objects.exists()


def test_the_endpoint_is_in_the_api_schema(client, db):
    schema = client.get("/api/schema/?format=json").json()

    operation = schema["paths"][URL]["post"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("LocationBatchOut")
    assert {"400", "401", "403"} <= set(operation["responses"])  # in the one error shape
    assert operation["responses"]["403"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    components = schema["components"]["schemas"]
    assert {"lat", "lng", "accuracy_m", "at"} <= set(components["PingIn"]["required"])
    assert set(components["LocationBatchOut"]["properties"]) == {"accepted", "duplicates", "rejected", "flagged"}
