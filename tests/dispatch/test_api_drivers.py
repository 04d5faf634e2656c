"""The drivers API: /api/v1/drivers/ (apps/dispatch/api/fleet.py, services/fleet.py driver_*)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.accounts.models import Membership
from apps.dispatch.models import Driver
from apps.events.models import Event
from tests.factories import PASSWORD, DriverFactory, HubFactory, VehicleFactory

URL = "/api/v1/drivers/"
User = get_user_model()


def detail(driver_id: int) -> str:
    return f"{URL}{driver_id}/"


def duty(driver_id: int) -> str:
    return f"{URL}{driver_id}/duty/"


def driver_payload(**overrides) -> dict:
    body = {
        "username": "erin",
        "password": "a-long-enough-secret",
        "name": "Erin Eckhart",
        "phone": "+4915199887766",
        "shift_start": "07:00",
        "shift_end": "15:30",
    }
    body.update(overrides)
    return body


@pytest.fixture
def globex_hub(globex):
    return HubFactory(org=globex, name="Globex Springfield Depot", code="GLX1")


@pytest.fixture
def globex_truck(globex, globex_hub):
    return VehicleFactory(org=globex, home_hub=globex_hub, name="Globex truck", plate="GLX 1")


@pytest.fixture
def frank(acme):
    """Another Acme driver."""
    return DriverFactory(org=acme, name="Frank Fischer")


@pytest.fixture
def globex_driver(globex):
    return DriverFactory(org=globex, name="Gus Globex")


def counts() -> tuple[int, int, int, int]:
    return User.objects.count(), Membership.objects.count(), Driver.objects.count(), Event.objects.count()


# --- list and retrieve ----------------------------------------------------------------


def test_it_lists_only_the_callers_organizations_drivers(as_dave, bob, globex_driver):
    response = as_dave.get(URL)

    assert response.status_code == 200
    assert [d["name"] for d in response.json()["results"]] == ["Bob Baker"]


def test_it_retrieves_a_driver_with_their_username(as_dave, bob, acme_hub, acme_van):
    response = as_dave.get(detail(bob.id))

    assert response.status_code == 200
    body = response.json()
    assert body["username"] == bob.user.username
    assert body["home_hub"] == acme_hub.id
    assert body["current_vehicle"] == acme_van.id
    assert (body["shift_start"], body["shift_end"]) == ("08:00:00", "17:00:00")
    assert "password" not in body


def test_another_tenants_driver_is_not_found(as_carol, bob):
    response = as_carol.get(detail(bob.id))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- create -------------------------------------------------------------------------------


def test_it_creates_a_driver_with_a_login(as_dave, acme, acme_hub, acme_van):
    response = as_dave.post(URL, driver_payload(home_hub=acme_hub.id, current_vehicle=acme_van.id), format="json")

    assert response.status_code == 201
    driver = Driver.objects.select_related("user__membership").get(pk=response.json()["id"])
    assert driver.org == acme
    assert driver.home_hub == acme_hub
    assert driver.current_vehicle == acme_van
    assert (driver.on_duty, driver.active) == (False, True)
    assert driver.user.username == "erin"
    assert (driver.user.first_name, driver.user.last_name) == ("Erin", "Eckhart")
    assert driver.user.membership.org == acme
    assert driver.user.membership.role == "driver"
    assert driver.user.is_staff is False  # drivers do not get the back-office admin


def test_the_created_driver_can_log_in_as_a_driver(as_dave, acme):
    driver_id = as_dave.post(URL, driver_payload(), format="json").json()["id"]
    erin = APIClient()

    assert erin.login(username="erin", password="a-long-enough-secret")
    me = erin.get("/api/v1/me/").json()
    assert me["role"] == "driver"
    assert me["driver_id"] == driver_id
    assert me["organization"]["slug"] == "acme"


def test_the_password_is_stored_hashed(as_dave):
    as_dave.post(URL, driver_payload(), format="json")

    user = User.objects.get(username="erin")
    assert user.password != "a-long-enough-secret"
    assert user.check_password("a-long-enough-secret")


def test_creating_a_driver_records_driver_created_in_the_org(as_dave, acme, dave):
    driver_id = as_dave.post(URL, driver_payload(), format="json").json()["id"]

    event = Event.objects.get(type="driver.created")
    assert event.org == acme
    assert event.subject_type == "driver"
    assert event.subject_id == str(driver_id)
    assert event.actor == f"user:{dave.pk}"
    assert event.payload == {"driver_id": driver_id, "name": "Erin Eckhart"}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"phone": "015112345678"}, "phone"),
        ({"phone": "+49 151 1234"}, "phone"),
        ({"phone": "+0151123456"}, "phone"),
        ({"password": "short"}, "password"),
        ({"password": "123456789"}, "password"),
        ({"username": "ab"}, "username"),
        ({"username": "erin eckhart"}, "username"),
        ({"shift_start": "25:00"}, "shift_start"),
        ({"shift_end": "half past three"}, "shift_end"),
        ({"name": ""}, "name"),
        ({"home_hub": "1"}, "home_hub"),
        ({"role": "admin"}, "role"),
    ],
)
def test_it_refuses_an_invalid_driver_naming_the_field(as_dave, override, field):
    before = counts()

    response = as_dave.post(URL, driver_payload(**override), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"], body
    assert counts() == before


def test_a_refused_password_is_not_echoed_back(as_dave):
    response = as_dave.post(URL, driver_payload(password="hunter2"), format="json")

    assert response.status_code == 400
    assert "hunter2" not in response.content.decode()


def test_a_shift_ending_before_it_starts_is_refused_on_shift_end(as_dave):
    before = counts()

    response = as_dave.post(URL, driver_payload(shift_start="17:00", shift_end="08:00"), format="json")

    assert response.status_code == 400
    assert counts() == before
    assert response.json()["fields"] == {"shift_end": ["shift_end must be after shift_start"]}


@pytest.mark.parametrize("shift_end", ["15:30Z", "15:30+01:00", 55800])
def test_a_shift_time_with_an_offset_is_a_validation_error(as_dave, shift_end):
    before = counts()

    response = as_dave.post(URL, driver_payload(shift_end=shift_end), format="json")

    assert response.status_code == 400
    assert "shift_end" in response.json()["fields"]
    assert counts() == before


def test_shift_times_that_both_carry_an_offset_are_a_validation_error(as_dave):
    as_dave.raise_request_exception = False
    before = counts()

    response = as_dave.post(URL, driver_payload(shift_start="07:00+01:00", shift_end="15:00+01:00"), format="json")

    assert response.status_code == 400
    assert counts() == before


def test_a_shift_that_ends_when_it_starts_is_refused(as_dave):
    before = counts()

    response = as_dave.post(URL, driver_payload(shift_start="17:00", shift_end="17:00"), format="json")

    assert response.status_code == 400
    assert "shift_end must be after shift_start" in str(response.json()["fields"])
    assert counts() == before


def test_a_taken_username_is_refused(as_dave, bob):
    before = counts()

    response = as_dave.post(URL, driver_payload(username=bob.user.username), format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"username": ["This username is taken."]}
    assert counts() == before


def test_another_tenants_hub_is_no_such_hub(as_dave, globex_hub):
    before = counts()

    response = as_dave.post(URL, driver_payload(home_hub=globex_hub.id), format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"home_hub": ["No such hub."]}
    assert counts() == before
    assert not User.objects.filter(username="erin").exists()


def test_another_tenants_vehicle_is_no_such_vehicle(as_dave, globex_truck):
    before = counts()

    response = as_dave.post(URL, driver_payload(current_vehicle=globex_truck.id), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["fields"] == {"current_vehicle": ["No such vehicle."]}
    assert "GLX" not in str(body)
    assert counts() == before


# --- update (PATCH) -------------------------------------------------------------------


def test_it_changes_only_the_fields_sent(as_dave, bob):
    response = as_dave.patch(detail(bob.id), {"phone": "+4930555000"}, format="json")

    assert response.status_code == 200
    bob.refresh_from_db()
    assert bob.phone == "+4930555000"
    assert bob.name == "Bob Baker"
    assert bob.current_vehicle is not None


def test_updating_a_driver_records_what_changed(as_dave, bob, acme):
    as_dave.patch(detail(bob.id), {"name": "Robert Baker", "phone": "+4930555000"}, format="json")

    event = Event.objects.get(type="driver.updated")
    assert event.org == acme
    assert event.subject_id == str(bob.id)
    assert event.payload == {"driver_id": bob.id, "changed": ["name", "phone"]}


def test_null_clears_the_current_vehicle(as_dave, bob):
    as_dave.patch(detail(bob.id), {"current_vehicle": None}, format="json")

    bob.refresh_from_db()
    assert bob.current_vehicle is None


def test_it_reassigns_a_vehicle_of_the_same_org(as_dave, bob, acme):
    other_van = VehicleFactory(org=acme)

    response = as_dave.patch(detail(bob.id), {"current_vehicle": other_van.id}, format="json")

    assert response.json()["current_vehicle"] == other_van.id


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"phone": "0301234567"}, "phone"),
        ({"shift_start": "18:00"}, "shift_end"),  # after Bob's 17:00 end
        ({"shift_end": "07:00"}, "shift_end"),  # before Bob's 08:00 start
        ({"shift_start": "12:00", "shift_end": "11:00"}, "shift_end"),
        ({"name": ""}, "name"),
        ({"active": "false"}, "active"),
        ({"username": "bobby"}, "username"),
        ({"on_duty": True}, "on_duty"),
    ],
)
def test_it_refuses_an_invalid_patch_and_changes_nothing(as_dave, bob, patch, field):
    before = counts()

    response = as_dave.patch(detail(bob.id), patch, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    bob.refresh_from_db()
    assert (bob.phone, bob.name, str(bob.shift_start), str(bob.shift_end), bob.on_duty, bob.active) == \
        ("+4915112345678", "Bob Baker", "08:00:00", "17:00:00", False, True)
    assert counts() == before


def test_a_patched_shift_time_with_an_offset_is_a_validation_error(as_dave, bob):
    response = as_dave.patch(detail(bob.id), {"shift_end": "18:00Z"}, format="json")

    assert response.status_code == 400
    assert "shift_end" in response.json()["fields"]
    bob.refresh_from_db()
    assert str(bob.shift_end) == "17:00:00"


def test_a_patch_naming_another_tenants_hub_is_refused(as_dave, bob, acme_hub, globex_hub):
    response = as_dave.patch(detail(bob.id), {"home_hub": globex_hub.id}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"home_hub": ["No such hub."]}
    bob.refresh_from_db()
    assert bob.home_hub == acme_hub


def test_a_patch_naming_another_tenants_vehicle_is_refused(as_dave, bob, acme_van, globex_truck):
    response = as_dave.patch(detail(bob.id), {"current_vehicle": globex_truck.id}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"current_vehicle": ["No such vehicle."]}
    bob.refresh_from_db()
    assert bob.current_vehicle == acme_van


def test_carol_cannot_patch_an_acme_driver(as_carol, bob):
    response = as_carol.patch(detail(bob.id), {"name": "Hijacked"}, format="json")

    assert response.status_code == 404
    bob.refresh_from_db()
    assert bob.name == "Bob Baker"
    assert not Event.objects.exists()


def test_drivers_cannot_be_replaced_or_deleted(as_dave, bob):
    assert as_dave.put(detail(bob.id), driver_payload(), format="json").status_code == 405
    assert as_dave.delete(detail(bob.id)).status_code == 405
    assert Driver.objects.filter(pk=bob.pk).exists()


# --- deactivation -------------------------------------------------------------------


def test_deactivating_a_driver_takes_them_off_duty_and_blocks_their_login(as_dave, bob):
    Driver.objects.filter(pk=bob.pk).update(on_duty=True)

    response = as_dave.patch(detail(bob.id), {"active": False}, format="json")

    assert response.status_code == 200
    assert (response.json()["active"], response.json()["on_duty"]) == (False, False)
    bob.refresh_from_db()
    bob.user.refresh_from_db()
    assert (bob.active, bob.on_duty, bob.user.is_active) == (False, False, False)
    assert not APIClient().login(username=bob.user.username, password=PASSWORD)


def test_a_deactivated_drivers_open_session_stops_working(as_dave, bob):
    bobs_phone = APIClient()
    assert bobs_phone.login(username=bob.user.username, password=PASSWORD)
    assert bobs_phone.get("/api/v1/me/").status_code == 200

    as_dave.patch(detail(bob.id), {"active": False}, format="json")

    assert bobs_phone.get("/api/v1/me/").status_code == 401


def test_reactivating_a_driver_restores_their_login_but_not_their_duty(as_dave, bob):
    as_dave.patch(detail(bob.id), {"active": False}, format="json")

    response = as_dave.patch(detail(bob.id), {"active": True}, format="json")

    assert (response.json()["active"], response.json()["on_duty"]) == (True, False)
    assert APIClient().login(username=bob.user.username, password=PASSWORD)


def test_an_ordinary_patch_leaves_the_login_alone(as_dave, bob):
    as_dave.patch(detail(bob.id), {"name": "Robert Baker"}, format="json")

    bob.user.refresh_from_db()
    assert bob.user.is_active is True


# --- duty -----------------------------------------------------------------------------


def test_a_dispatcher_puts_a_driver_on_duty(as_dave, bob, acme, dave):
    response = as_dave.post(duty(bob.id), {"on_duty": True}, format="json")

    assert response.status_code == 200
    assert response.json()["on_duty"] is True
    bob.refresh_from_db()
    assert bob.on_duty is True
    event = Event.objects.get(type="driver.duty_changed")
    assert event.org == acme
    assert event.actor == f"user:{dave.pk}"
    assert event.payload == {"driver_id": bob.id, "on_duty": True}


def test_a_dispatcher_sets_any_of_their_drivers_duty(as_dave, bob, frank):
    as_dave.post(duty(bob.id), {"on_duty": True}, format="json")
    as_dave.post(duty(frank.id), {"on_duty": True}, format="json")

    assert set(Driver.objects.filter(on_duty=True).values_list("pk", flat=True)) == {bob.id, frank.id}


def test_bob_starts_and_ends_his_own_shift(as_bob, bob):
    assert as_bob.post(duty(bob.id), {"on_duty": True}, format="json").json()["on_duty"] is True
    assert as_bob.post(duty(bob.id), {"on_duty": False}, format="json").json()["on_duty"] is False

    assert list(Event.objects.filter(type="driver.duty_changed").values_list("payload__on_duty", "actor")) == [
        (True, f"user:{bob.user.pk}"), (False, f"user:{bob.user.pk}"),
    ]


def test_bob_cannot_set_another_drivers_duty(as_bob, bob, frank):
    response = as_bob.post(duty(frank.id), {"on_duty": True}, format="json")

    assert response.status_code == 404
    frank.refresh_from_db()
    assert frank.on_duty is False
    assert not Event.objects.filter(type="driver.duty_changed").exists()


def test_carol_cannot_set_an_acme_drivers_duty(as_carol, bob):
    response = as_carol.post(duty(bob.id), {"on_duty": True}, format="json")

    assert response.status_code == 404
    bob.refresh_from_db()
    assert bob.on_duty is False


def test_setting_the_same_duty_again_records_nothing_new(as_dave, bob):
    as_dave.post(duty(bob.id), {"on_duty": True}, format="json")
    response = as_dave.post(duty(bob.id), {"on_duty": True}, format="json")

    assert response.status_code == 200
    assert Event.objects.filter(type="driver.duty_changed").count() == 1


def test_an_inactive_driver_cannot_go_on_duty(as_dave, bob):
    Driver.objects.filter(pk=bob.pk).update(active=False)

    response = as_dave.post(duty(bob.id), {"on_duty": True}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "driver_inactive"
    bob.refresh_from_db()
    assert bob.on_duty is False
    assert not Event.objects.filter(type="driver.duty_changed").exists()


def test_an_inactive_driver_may_still_be_taken_off_duty(as_dave, bob):
    Driver.objects.filter(pk=bob.pk).update(active=False, on_duty=True)

    response = as_dave.post(duty(bob.id), {"on_duty": False}, format="json")

    assert response.status_code == 200
    assert response.json()["on_duty"] is False


@pytest.mark.parametrize("body", [{}, {"on_duty": "true"}, {"on_duty": 1}, {"on_duty": True, "extra": 1}])
def test_duty_needs_a_boolean(as_dave, bob, body):
    response = as_dave.post(duty(bob.id), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    bob.refresh_from_db()
    assert bob.on_duty is False
