"""The admin shows location history, positions and tracking tokens read-only, each
organization its own (apps/common/admin_scoping.py)."""

from __future__ import annotations

import pytest

from apps.tracking.models import DriverPosition, LocationPing, TrackingToken
from apps.tracking.services import location_receive, tracking_token_issue
from tests.factories import PASSWORD, DriverFactory, OrderFactory

from .helpers import ping

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
def as_dave_in_admin(client, dave):
    assert client.login(username="dave", password=PASSWORD)
    return client


@pytest.fixture
def both_fleets(bob, globex):
    gus = DriverFactory(org=globex, name="Gus Globex")
    for driver in (bob, gus):
        location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=[ping(5)])
    return bob, gus


@pytest.mark.parametrize("model", [LocationPing, DriverPosition])
def test_dave_sees_acmes_locations_and_not_globexs(as_dave_in_admin, both_fleets, model):
    bob, _ = both_fleets

    response = as_dave_in_admin.get(f"/admin/tracking/{model._meta.model_name}/")

    assert response.status_code == 200
    assert [row.driver_id for row in response.context["cl"].result_list] == [bob.pk]
    assert "Gus Globex" not in response.content.decode()


def test_locations_cannot_be_added_changed_or_deleted(as_dave_in_admin, both_fleets):
    bob, _ = both_fleets
    ping_row = LocationPing.objects.get(driver=bob)

    assert as_dave_in_admin.get("/admin/tracking/locationping/add/").status_code == 403
    assert as_dave_in_admin.post(f"/admin/tracking/locationping/{ping_row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LocationPing.objects.filter(pk=ping_row.pk).exists()


def test_the_token_list_shows_only_a_prefix_of_each_token(as_dave_in_admin, acme):
    token = tracking_token_issue(order=OrderFactory(org=acme))

    response = as_dave_in_admin.get("/admin/tracking/trackingtoken/")

    assert response.status_code == 200
    assert [t.pk for t in response.context["cl"].result_list] == [token.pk]
    assert token.token not in response.content.decode()
    assert token.token not in as_dave_in_admin.get(f"/admin/tracking/trackingtoken/{token.pk}/change/").content.decode()


def test_carol_does_not_see_acmes_tokens(client, carol, acme):
    tracking_token_issue(order=OrderFactory(org=acme))
    assert client.login(username="carol", password=PASSWORD)

    response = client.get("/admin/tracking/trackingtoken/")

    assert list(response.context["cl"].result_list) == []
    assert TrackingToken.objects.count() == 1
