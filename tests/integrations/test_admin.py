"""Mappings are editable in the admin; every change is a new version, checked like the API's."""

from __future__ import annotations

import copy
import json

import pytest

from apps.integrations.api import MAGENTO_SPEC
from apps.integrations.models import Mapping
from apps.integrations.services.mappings import mapping_create
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
URL = "/admin/integrations/mapping/"


@pytest.fixture
def as_alice_in_admin(client, alice):
    assert client.login(username="alice", password=PASSWORD)
    return client


def test_alice_adds_a_mapping_in_the_admin(as_alice_in_admin, acme):
    response = as_alice_in_admin.post(f"{URL}add/", {"name": "Magento", "spec": json.dumps(MAGENTO_SPEC),
                                                     "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"})

    assert response.status_code == 302, response.content[:2000]
    mapping = Mapping.objects.get()
    assert mapping.org == acme and mapping.current.version == 1


def test_editing_the_spec_makes_a_new_version_and_the_old_one_stays(as_alice_in_admin, acme):
    mapping = mapping_create(org=acme, name="Magento", spec=MAGENTO_SPEC, actor_label="user:1")
    spec = copy.deepcopy(MAGENTO_SPEC) | {"timezone": "Europe/Berlin"}

    response = as_alice_in_admin.post(f"{URL}{mapping.pk}/change/", {
        "name": "Magento", "spec": json.dumps(spec), "versions-TOTAL_FORMS": "1", "versions-INITIAL_FORMS": "1",
        "versions-0-id": str(mapping.current.pk), "versions-0-mapping": str(mapping.pk)})

    assert response.status_code == 302, response.content[:2000]
    assert list(mapping.versions.order_by("version").values_list("version", "spec__timezone")) == [
        (1, "America/New_York"), (2, "Europe/Berlin")]


def test_a_broken_spec_is_refused_in_the_admin_with_its_problems(as_alice_in_admin, acme):
    response = as_alice_in_admin.post(f"{URL}add/", {"name": "Broken", "spec": json.dumps({"fields": {"colour": "x"}}),
                                                     "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"})

    assert response.status_code == 200
    assert "external_id" in response.content.decode()
    assert Mapping.objects.count() == 0


def test_carols_admin_does_not_list_acmes_mappings(client, acme, carol):
    mapping_create(org=acme, name="Magento", spec=MAGENTO_SPEC, actor_label="user:1")
    assert client.login(username="carol", password=PASSWORD)

    response = client.get(URL)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
