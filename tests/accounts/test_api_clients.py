"""API client keys: /api/v1/api-clients/ (apps/accounts/api.py, services.py api_client_*)."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import ApiClient
from apps.accounts.services import api_client_create
from tests.conftest import client_for
from tests.factories import member

URL = "/api/v1/api-clients/"


def detail(client_id: int) -> str:
    return f"{URL}{client_id}/"


def revoke(client_id: int) -> str:
    return f"{URL}{client_id}/revoke/"


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def shop_key(acme, alice):
    """Acme's shop integration, as alice created it: (client, plaintext key)."""
    return api_client_create(org=acme, name="Acme Shopify", scopes=["orders:read", "orders:write"],
                             created_by_id=alice.pk)


# --- create -------------------------------------------------------------------------------


def test_alice_creates_a_key_and_sees_it_once(as_alice, acme, alice):
    response = as_alice.post(URL, {"name": "Webshop", "scopes": ["orders:write", "orders:read"]}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith(f"lm_{body['prefix']}_")
    assert body["name"] == "Webshop"
    assert body["scopes"] == ["orders:read", "orders:write"]
    assert body["revoked_at"] is None
    client = ApiClient.objects.get(pk=body["id"])
    assert client.org == acme
    assert client.created_by == alice


def test_only_the_hash_of_the_key_is_stored(as_alice):
    body = as_alice.post(URL, {"name": "Webshop", "scopes": ["orders:read"]}, format="json").json()

    client = ApiClient.objects.get(pk=body["id"])
    assert client.key_hash == hashlib.sha256(body["key"].encode()).hexdigest()
    stored = [str(v) for v in ApiClient.objects.filter(pk=client.pk).values().get().values()]
    assert body["key"] not in stored


def test_the_new_key_works_at_once(as_alice, acme_hub):
    key = as_alice.post(URL, {"name": "ERP", "scopes": ["hubs:read"]}, format="json").json()["key"]

    response = with_key(key).get("/api/v1/hubs/")

    assert response.status_code == 200
    assert [h["id"] for h in response.json()["results"]] == [acme_hub.id]


def test_every_key_is_different(as_alice):
    keys = {as_alice.post(URL, {"name": f"k{i}", "scopes": ["orders:read"]}, format="json").json()["key"]
            for i in range(3)}

    assert len(keys) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Shop", "scopes": ["orders:delete"]}, "scopes"),
        ({"name": "Shop", "scopes": ["orders:read", "superpowers"]}, "scopes"),
        ({"name": "Shop", "scopes": ["accounts:write"]}, "scopes"),  # partner systems never manage people
        ({"name": "Shop", "scopes": ["accounts:read"]}, "scopes"),
        ({"name": "Shop", "scopes": []}, "scopes"),
        ({"name": "Shop", "scopes": "orders:read"}, "scopes"),
        ({"name": "Shop"}, "scopes"),
        ({"name": "   ", "scopes": ["orders:read"]}, "name"),
        ({"scopes": ["orders:read"]}, "name"),
        ({"name": "Shop", "scopes": ["orders:read"], "key": "lm_mine_chosen"}, "key"),
    ],
)
def test_it_refuses_an_invalid_client_naming_the_field(as_alice, body, field):
    response = as_alice.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"], response.json()
    assert not ApiClient.objects.exists()


def test_the_unknown_scopes_are_named(as_alice):
    response = as_alice.post(URL, {"name": "Shop", "scopes": ["orders:read", "zz:top", "aa:bottom"]}, format="json")

    assert response.json()["fields"]["scopes"] == ["Unknown or not grantable: aa:bottom, zz:top."]


# --- list and retrieve ----------------------------------------------------------------


def test_the_list_never_shows_a_key_or_its_hash(as_alice, shop_key):
    client, key = shop_key

    response = as_alice.get(URL)

    assert response.status_code == 200
    [listed] = response.json()["results"]
    assert listed["id"] == client.id
    assert listed["prefix"] == client.prefix
    assert "key" not in listed
    assert "key_hash" not in listed
    assert key not in response.content.decode()
    assert client.key_hash not in response.content.decode()


def test_retrieving_a_client_never_shows_its_key(as_alice, shop_key):
    client, key = shop_key

    response = as_alice.get(detail(client.id))

    assert response.status_code == 200
    assert set(response.json()) == {"id", "name", "prefix", "scopes", "source", "created_at", "last_used_at",
                                    "revoked_at"}
    assert key not in response.content.decode()


def test_the_list_shows_only_the_callers_organizations_clients(as_alice, shop_key, globex):
    api_client_create(org=globex, name="Globex ERP", scopes=["orders:read"])

    names = [c["name"] for c in as_alice.get(URL).json()["results"]]

    assert names == ["Acme Shopify"]


def test_another_tenants_client_is_not_found(as_carol, shop_key):
    client, _ = shop_key

    assert as_carol.get(detail(client.id)).status_code == 404


# --- revoke ---------------------------------------------------------------------------


def test_revoking_a_key_makes_it_fail_with_401(as_alice, shop_key):
    client, key = shop_key
    assert with_key(key).get("/api/v1/orders/").status_code == 200

    response = as_alice.post(revoke(client.id))

    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    rejected = with_key(key).get("/api/v1/orders/")
    assert rejected.status_code == 401
    assert rejected.json()["code"] == "authentication_failed"


def test_revoking_twice_keeps_the_first_revocation_time(as_alice, shop_key):
    client, _ = shop_key
    first = as_alice.post(revoke(client.id)).json()["revoked_at"]

    second = as_alice.post(revoke(client.id))

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first


def test_globexs_admin_cannot_revoke_an_acme_key(globex, shop_key):
    client, key = shop_key
    as_globex_admin = client_for(member(globex, "gina", "admin"))

    response = as_globex_admin.post(revoke(client.id))

    assert response.status_code == 404
    client.refresh_from_db()
    assert client.revoked_at is None
    assert with_key(key).get("/api/v1/orders/").status_code == 200


# --- who may manage keys ------------------------------------------------------------


def test_a_dispatcher_cannot_create_a_key(as_dave):
    response = as_dave.post(URL, {"name": "Webshop", "scopes": ["orders:read"]}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "accounts:write" in response.json()["message"]
    assert not ApiClient.objects.exists()


def test_a_dispatcher_cannot_revoke_a_key(as_dave, shop_key):
    client, key = shop_key

    response = as_dave.post(revoke(client.id))

    assert response.status_code == 403
    client.refresh_from_db()
    assert client.revoked_at is None
    assert with_key(key).get("/api/v1/orders/").status_code == 200


def test_a_dispatcher_may_see_which_keys_exist(as_dave, shop_key):
    """Dispatchers hold accounts:read (roles.py); the list carries no secrets."""
    response = as_dave.get(URL)

    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["Acme Shopify"]


def test_a_driver_cannot_see_keys(as_bob, shop_key):
    assert as_bob.get(URL).status_code == 403
    assert as_bob.post(URL, {"name": "x", "scopes": ["orders:read"]}, format="json").status_code == 403


def test_a_key_cannot_manage_keys(shop_key):
    client, key = shop_key
    as_key = with_key(key)

    assert as_key.get(URL).status_code == 403
    assert as_key.post(URL, {"name": "child", "scopes": ["orders:read"]}, format="json").status_code == 403
    assert as_key.post(revoke(client.id)).status_code == 403
    assert ApiClient.objects.count() == 1


def test_anonymous_cannot_create_a_key(db, anonymous):
    response = anonymous.post(URL, {"name": "x", "scopes": ["orders:read"]}, format="json")

    assert response.status_code == 401
    assert not ApiClient.objects.exists()


def test_a_prefix_collision_does_not_fail_the_request(as_alice, monkeypatch):
    import secrets

    real_token_hex = secrets.token_hex
    draws = iter(["c0ffee00", "c0ffee00"])
    monkeypatch.setattr("apps.accounts.services.secrets.token_hex", lambda n: next(draws, None) or real_token_hex(n))
    as_alice.raise_request_exception = False
    as_alice.post(URL, {"name": "first", "scopes": ["orders:read"]}, format="json")

    response = as_alice.post(URL, {"name": "second", "scopes": ["orders:read"]}, format="json")

    assert response.status_code == 201
