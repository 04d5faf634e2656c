"""Completion policies in the admin: each organization edits its own."""

from __future__ import annotations

import pytest

from apps.pod.models import PodPolicy


@pytest.fixture
def dave_in_admin(client, dave):
    dave.is_staff = True
    dave.save()
    client.force_login(dave)
    return client


def test_dave_creates_acmes_default_policy_and_sees_only_acmes(dave_in_admin, acme, globex):
    PodPolicy.objects.create(org=globex, signature=True)

    response = dave_in_admin.post("/admin/pod/podpolicy/add/", {
        "source": "", "min_photos": 1, "signature": "on", "min_age": 0})

    assert response.status_code == 302, response.content[:500]
    assert PodPolicy.objects.get(org=acme).min_photos == 1
    listing = dave_in_admin.get("/admin/pod/podpolicy/").content.decode()
    assert "default (Acme Deliveries)" in listing and "Globex" not in listing
