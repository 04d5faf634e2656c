"""The back-office admin is scoped to the signed-in staff member's organization
(apps/common/admin_scoping.py; registered in apps/dispatch/admin.py, apps/events/admin.py,
apps/accounts/admin.py). Dave dispatches for Acme and is staff; Carol does the same for Globex."""

from __future__ import annotations

import pytest

from apps.accounts.actor import system_actor
from apps.accounts.models import Membership
from apps.accounts.services import api_client_create, api_client_revoke
from apps.dispatch.inputs import HubIn
from apps.dispatch.models import Driver, Hub, Vehicle
from apps.dispatch.services import fleet
from apps.events.models import Event
from tests.factories import PASSWORD, HubFactory

HUBS = "/admin/dispatch/hub/"


def hub_form(**overrides) -> dict:
    form = {"name": "Potsdam Depot", "code": "POT1", "timezone": "Europe/Berlin", "address_line1": "Am Kanal 1",
            "address_line2": "", "city": "Potsdam", "postal_code": "14467", "region": "", "country": "DE",
            "lat": "52.39", "lng": "13.06", "opening_hours": '{"mon": [["07:00", "19:00"]]}'}
    form.update(overrides)
    return form


def hub_in(code: str) -> HubIn:
    return HubIn(name=f"Hub {code}", code=code, timezone="Europe/Berlin", address_line1="Str. 1", city="Berlin",
                 country="DE", lat=52.5, lng=13.4)


@pytest.fixture
def globex_hub(globex):
    return HubFactory(org=globex, name="Globex Springfield Depot", code="GLX1")


@pytest.fixture
def as_dave_in_admin(client, dave):
    assert client.login(username="dave", password=PASSWORD)
    return client


def listed(response) -> list:
    return list(response.context["cl"].result_list)


# --- hubs -------------------------------------------------------------------------------


def test_dave_sees_acmes_hubs_but_not_globexs(as_dave_in_admin, acme_hub, globex_hub):
    response = as_dave_in_admin.get(HUBS)

    assert response.status_code == 200
    assert listed(response) == [acme_hub]
    assert "GLX1" not in response.content.decode()


def test_searching_does_not_reach_across_tenants(as_dave_in_admin, acme_hub, globex_hub):
    response = as_dave_in_admin.get(HUBS, {"q": "Globex"})

    assert listed(response) == []


def test_carol_sees_only_globexs_hubs(client, carol, acme_hub, globex_hub):
    client.login(username="carol", password=PASSWORD)

    assert listed(client.get(HUBS)) == [globex_hub]


def test_a_globex_hubs_change_page_is_out_of_reach(as_dave_in_admin, globex_hub):
    response = as_dave_in_admin.get(f"{HUBS}{globex_hub.id}/change/")

    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == "/admin/"


def test_dave_cannot_edit_a_globex_hub_by_posting_to_it(as_dave_in_admin, globex_hub):
    response = as_dave_in_admin.post(f"{HUBS}{globex_hub.id}/change/", hub_form(name="Owned by Acme"))

    assert response.status_code in (302, 404)
    globex_hub.refresh_from_db()
    assert globex_hub.name == "Globex Springfield Depot"


def test_dave_cannot_delete_a_globex_hub(as_dave_in_admin, globex_hub):
    as_dave_in_admin.post(f"{HUBS}{globex_hub.id}/delete/", {"post": "yes"})

    assert Hub.objects.filter(pk=globex_hub.pk).exists()


def test_the_hub_form_offers_no_organization_field(as_dave_in_admin):
    response = as_dave_in_admin.get(f"{HUBS}add/")

    assert response.status_code == 200
    assert 'name="org"' not in response.content.decode()


def test_creating_a_hub_through_the_admin_assigns_acme(as_dave_in_admin, acme, globex):
    response = as_dave_in_admin.post(f"{HUBS}add/", hub_form())

    assert response.status_code == 302
    hub = Hub.objects.get(code="POT1")
    assert hub.org == acme
    assert hub.opening_hours == {"mon": [["07:00", "19:00"]]}


def test_an_org_smuggled_into_the_form_is_ignored(as_dave_in_admin, acme, globex):
    as_dave_in_admin.post(f"{HUBS}add/", hub_form(org=globex.id))

    assert Hub.objects.get(code="POT1").org == acme


def test_a_code_globex_uses_is_free_for_acme(as_dave_in_admin, acme, globex_hub):
    response = as_dave_in_admin.post(f"{HUBS}add/", hub_form(code="GLX1"))

    assert response.status_code == 302
    assert Hub.objects.filter(org=acme, code="GLX1").exists()


def test_a_duplicate_hub_code_is_a_form_error(as_dave_in_admin, acme_hub):
    as_dave_in_admin.raise_request_exception = False

    response = as_dave_in_admin.post(f"{HUBS}add/", hub_form(code=acme_hub.code))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Hub.objects.count() == 1


def test_a_duplicate_plate_is_a_form_error(as_dave_in_admin, acme_van):
    as_dave_in_admin.raise_request_exception = False
    form = {"name": "Van 2", "plate": acme_van.plate, "type": "van", "capacity_weight_kg": "800",
            "capacity_volume_l": "6000", "capacity_parcels": "120", "skills": "[]", "home_hub": "", "active": "on"}

    response = as_dave_in_admin.post("/admin/dispatch/vehicle/add/", form)

    assert response.status_code == 200
    assert Vehicle.objects.count() == 1


def test_the_admin_refuses_a_timezone_that_is_not_iana(as_dave_in_admin):
    response = as_dave_in_admin.post(f"{HUBS}add/", hub_form(timezone="Mars/Olympus"))

    assert response.status_code == 200
    assert "timezone" in response.context["adminform"].form.errors
    assert not Hub.objects.exists()


# --- foreign keys -------------------------------------------------------------------


def test_a_vehicles_home_hub_choices_are_acmes_only(as_dave_in_admin, acme_hub, globex_hub):
    response = as_dave_in_admin.get("/admin/dispatch/vehicle/add/")

    choices = list(response.context["adminform"].form.fields["home_hub"].queryset)
    assert choices == [acme_hub]


def test_a_globex_hub_posted_as_home_hub_is_refused(as_dave_in_admin, globex_hub):
    form = {"name": "Van 2", "plate": "B-XX 1", "type": "van", "capacity_weight_kg": "800",
            "capacity_volume_l": "6000", "capacity_parcels": "120", "skills": "[]", "home_hub": globex_hub.id,
            "active": "on"}

    response = as_dave_in_admin.post("/admin/dispatch/vehicle/add/", form)

    assert response.status_code == 200
    assert "home_hub" in response.context["adminform"].form.errors
    assert not Vehicle.objects.filter(plate="B-XX 1").exists()


# --- drivers ------------------------------------------------------------------------------


def test_the_admin_does_not_offer_an_add_driver_form_that_cannot_save(as_dave_in_admin, acme):
    as_dave_in_admin.raise_request_exception = False
    form = {"name": "Zed", "phone": "", "shift_start": "08:00", "shift_end": "16:00", "home_hub": "",
            "current_vehicle": "", "active": "on"}

    response = as_dave_in_admin.post("/admin/dispatch/driver/add/", form)

    assert response.status_code in (200, 403)


def test_deactivating_a_driver_in_the_admin_ends_duty_and_login(as_dave_in_admin, bob, acme_hub, acme_van):
    Driver.objects.filter(pk=bob.pk).update(on_duty=True)
    form = {"name": "Bob Baker", "phone": "+4915112345678", "shift_start": "08:00", "shift_end": "17:00",
            "home_hub": acme_hub.id, "current_vehicle": acme_van.id}  # "active" unchecked

    as_dave_in_admin.post(f"/admin/dispatch/driver/{bob.id}/change/", form)

    bob.refresh_from_db()
    bob.user.refresh_from_db()
    assert bob.active is False
    assert (bob.on_duty, bob.user.is_active) == (False, False)


# --- the event log ------------------------------------------------------------------------


@pytest.fixture
def logged_events(acme, globex):
    """One hub.created in each organization, recorded by the service."""
    fleet.hub_create(actor=system_actor(acme), data=hub_in("ACM1"))
    fleet.hub_create(actor=system_actor(globex), data=hub_in("GLB1"))
    return Event.objects.get(org=acme), Event.objects.get(org=globex)


def test_the_event_log_lists_only_acmes_events(as_dave_in_admin, logged_events):
    acme_event, _ = logged_events

    response = as_dave_in_admin.get("/admin/events/event/")

    assert response.status_code == 200
    assert listed(response) == [acme_event]


def test_an_event_can_be_viewed_but_not_changed(as_dave_in_admin, logged_events):
    acme_event, _ = logged_events
    url = f"/admin/events/event/{acme_event.id}/change/"

    page = as_dave_in_admin.get(url)
    post = as_dave_in_admin.post(url, {"type": "hub.deleted", "subject_type": "hub", "subject_id": "1",
                                       "actor": "me", "payload": "{}", "sequence": "1"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert post.status_code == 403
    acme_event.refresh_from_db()
    assert acme_event.type == "hub.created"


def test_events_cannot_be_added_or_deleted_in_the_admin(as_dave_in_admin, logged_events):
    acme_event, _ = logged_events

    assert as_dave_in_admin.get("/admin/events/event/add/").status_code == 403
    assert as_dave_in_admin.post(f"/admin/events/event/{acme_event.id}/delete/", {"post": "yes"}).status_code == 403
    as_dave_in_admin.post("/admin/events/event/", {"action": "delete_selected", "_selected_action": [acme_event.id],
                                                   "post": "yes"})
    assert Event.objects.filter(pk=acme_event.pk).exists()


def test_a_globex_event_is_out_of_reach(as_dave_in_admin, logged_events):
    _, globex_event = logged_events

    assert as_dave_in_admin.get(f"/admin/events/event/{globex_event.id}/change/").status_code in (302, 404)


# --- people and keys ------------------------------------------------------------------


def test_dave_cannot_promote_himself(as_dave_in_admin, dave):
    membership = dave.membership

    response = as_dave_in_admin.post(f"/admin/accounts/membership/{membership.id}/change/",
                                     {"role": "admin", "user": dave.pk, "org": membership.org_id})

    assert response.status_code == 403
    assert Membership.objects.get(pk=membership.pk).role == "dispatcher"


def test_organizations_are_for_platform_operators_only(as_dave_in_admin, acme):
    assert as_dave_in_admin.get("/admin/accounts/organization/").status_code == 403
    assert as_dave_in_admin.get(f"/admin/accounts/organization/{acme.id}/change/").status_code in (302, 403)


def test_a_driver_cannot_enter_the_admin(client, bob):
    client.login(username=bob.user.username, password=PASSWORD)

    response = client.get(HUBS)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.fixture
def revoked_key(acme, alice):
    client, _ = api_client_create(org=acme, name="Old shop", scopes=["orders:read"], created_by_id=alice.pk)
    return api_client_revoke(client=client)


def test_the_api_client_form_does_not_list_other_tenants_users(as_dave_in_admin, carol, revoked_key):
    response = as_dave_in_admin.get(f"/admin/accounts/apiclient/{revoked_key.id}/change/")

    assert response.status_code == 200
    assert "carol" not in response.content.decode()


def test_a_dispatcher_cannot_unrevoke_or_widen_a_key_in_the_admin(as_dave_in_admin, revoked_key):
    as_dave_in_admin.post(f"/admin/accounts/apiclient/{revoked_key.id}/change/", {
        "name": "Old shop", "scopes": '["orders:read", "accounts:write"]', "created_by": "",
        "last_used_at_0": "", "last_used_at_1": "", "revoked_at_0": "", "revoked_at_1": "",
    })

    revoked_key.refresh_from_db()
    assert revoked_key.revoked_at is not None
    assert revoked_key.scopes == ["orders:read"]


def test_an_admin_removes_a_dispatcher_from_the_organization(client, alice, dave):
    from apps.accounts.models import Membership

    client.force_login(alice)

    client.post("/admin/accounts/membership/", {"action": "remove", "_selected_action": [dave.membership.pk]})

    assert not Membership.objects.filter(user=dave).exists()
    dave.refresh_from_db()
    assert dave.is_active is False


def test_a_dispatcher_cannot_remove_anyone(as_dave_in_admin, alice):
    from apps.accounts.models import Membership

    as_dave_in_admin.post("/admin/accounts/membership/", {"action": "remove",
                                                          "_selected_action": [alice.membership.pk]})

    assert Membership.objects.filter(user=alice).exists()
