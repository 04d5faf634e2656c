"""Who is calling: API keys, sessions and the 401/403 answers
(apps/accounts/authentication.py, permissions.py, services.py api_client_authenticate)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.accounts.models import ApiClient
from apps.accounts.services import api_client_create, api_client_revoke
from apps.dispatch.models import Hub, Order
from apps.events.models import Event
from tests.conftest import client_for
from tests.factories import PASSWORD, HubFactory, OrderFactory, order_payload

HUBS = "/api/v1/hubs/"
ORDERS = "/api/v1/orders/"


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def x_api_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


@pytest.fixture
def hubs_key(acme):
    """A key that may read Acme's hubs, and nothing else."""
    return api_client_create(org=acme, name="Hub sync", scopes=["hubs:read"])


@pytest.fixture
def orders_read_key(acme):
    return api_client_create(org=acme, name="Reporting", scopes=["orders:read"])


def assert_error_shape(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]


# --- API keys -----------------------------------------------------------------------


def test_a_bearer_key_authenticates_for_its_organization(hubs_key, acme_hub, globex):
    HubFactory(org=globex, code="GLX1")
    _, key = hubs_key

    response = bearer(key).get(HUBS)

    assert response.status_code == 200
    assert [h["id"] for h in response.json()["results"]] == [acme_hub.id]


def test_the_bearer_keyword_is_case_insensitive(hubs_key, acme_hub):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"bearer {hubs_key[1]}")

    assert client.get(HUBS).status_code == 200


def test_an_x_api_key_header_authenticates(hubs_key, acme_hub):
    response = x_api_key(hubs_key[1]).get(HUBS)

    assert response.status_code == 200
    assert response.json()["results"][0]["id"] == acme_hub.id


@pytest.mark.parametrize("param", ["api_key", "key", "token", "access_token"])
def test_a_key_in_the_url_is_refused_even_when_it_is_valid(hubs_key, acme_hub, param):
    response = APIClient().get(HUBS, {param: hubs_key[1]})

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert "Authorization header" in response.json()["message"]


def test_me_describes_a_key_as_an_organization_without_a_user(hubs_key):
    me = bearer(hubs_key[1]).get("/api/v1/me/").json()

    assert me["organization"]["slug"] == "acme"
    assert (me["user"], me["role"], me["driver_id"]) == (None, None, None)
    assert me["scopes"] == ["hubs:read"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer lm_a_b extra", "Bearer  "])
def test_a_malformed_authorization_header_is_refused(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(HUBS)

    assert_error_shape(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_malformed_header_wins_over_a_good_x_api_key(hubs_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer", HTTP_X_API_KEY=hubs_key[1])

    assert client.get(HUBS).status_code == 401


@pytest.mark.parametrize(
    "key",
    ["lm_00000000_nope", "not-a-lastmile-key", "lm_", "lm_nounderscore", "sk_live_abcdef"],
)
def test_an_unknown_key_is_refused(db, key):
    response = bearer(key).get(HUBS)

    assert_error_shape(response, 401, "authentication_failed")
    assert response.json()["message"] == "The API key is unknown or revoked."


def test_a_key_with_the_right_prefix_but_a_wrong_secret_is_refused(hubs_key):
    client, _ = hubs_key
    forged = f"lm_{client.prefix}_{'A' * 43}"

    assert_error_shape(bearer(forged).get(HUBS), 401, "authentication_failed")
    assert_error_shape(x_api_key(forged).get(HUBS), 401, "authentication_failed")


def test_a_revoked_key_is_refused(hubs_key, acme_hub):
    client, key = hubs_key
    api_client_revoke(client=client)

    assert_error_shape(bearer(key).get(HUBS), 401, "authentication_failed")
    assert_error_shape(x_api_key(key).get(HUBS), 401, "authentication_failed")


def test_another_authorization_scheme_is_treated_as_no_credentials(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic ZGF2ZTpzZWNyZXQ=")

    assert_error_shape(client.get(HUBS), 401, "not_authenticated")


# --- key scopes -----------------------------------------------------------------------


def test_an_orders_read_key_can_read_orders(orders_read_key, acme):
    order = OrderFactory(org=acme)

    response = bearer(orders_read_key[1]).get(ORDERS)

    assert response.status_code == 200
    assert [o["id"] for o in response.json()["results"]] == [order.id]


def test_an_orders_read_key_cannot_create_orders(orders_read_key):
    response = bearer(orders_read_key[1]).post(ORDERS, order_payload(), format="json")

    assert_error_shape(response, 403, "permission_denied")
    assert response.json()["message"] == "This action needs the 'orders:write' scope."
    assert not Order.objects.exists()


def test_an_orders_read_key_cannot_read_hubs(orders_read_key, acme_hub):
    response = bearer(orders_read_key[1]).get(HUBS)

    assert_error_shape(response, 403, "permission_denied")
    assert "hubs:read" in response.json()["message"]


def test_a_hubs_read_key_cannot_write_hubs(hubs_key):
    response = bearer(hubs_key[1]).post(HUBS, {"name": "x"}, format="json")

    assert_error_shape(response, 403, "permission_denied")
    assert not Hub.objects.exists()


def test_a_key_reaches_only_its_own_organizations_rows(globex, acme_hub):
    _, globex_key = api_client_create(org=globex, name="Globex sync", scopes=["hubs:read"])

    assert bearer(globex_key).get(HUBS).json()["results"] == []
    assert bearer(globex_key).get(f"{HUBS}{acme_hub.id}/").status_code == 404


def test_a_key_with_write_scope_records_itself_as_the_actor(acme):
    client, key = api_client_create(org=acme, name="ERP", scopes=["hubs:write"])
    body = {"name": "ERP hub", "code": "ERP1", "timezone": "Europe/Berlin", "address_line1": "a", "city": "b",
            "country": "DE", "lat": 52.5, "lng": 13.4}

    response = bearer(key).post(HUBS, body, format="json")

    assert response.status_code == 201
    assert Event.objects.get(type="hub.created").actor == f"api_client:{client.pk}"


# --- last_used_at ---------------------------------------------------------------------


def test_last_used_at_is_written_at_most_once_a_minute(hubs_key):
    client, key = hubs_key
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert client.last_used_at is None

    with time_machine.travel(start, tick=False) as clock:
        bearer(key).get(HUBS)
        client.refresh_from_db()
        assert client.last_used_at == start

        clock.shift(timedelta(seconds=30))
        bearer(key).get(HUBS)
        client.refresh_from_db()
        assert client.last_used_at == start

        clock.shift(timedelta(seconds=31))  # 61 s after the first use
        bearer(key).get(HUBS)
        client.refresh_from_db()
        assert client.last_used_at == start + timedelta(seconds=61)


def test_a_refused_key_does_not_touch_last_used_at(hubs_key):
    client, key = hubs_key
    api_client_revoke(client=client)

    bearer(key).get(HUBS)

    assert ApiClient.objects.get(pk=client.pk).last_used_at is None


# --- sessions (browser apps) ----------------------------------------------------------


def test_a_session_login_works_for_browser_apps(dave, acme_hub):
    browser = APIClient()

    assert browser.login(username="dave", password=PASSWORD)
    response = browser.get(HUBS)

    assert response.status_code == 200
    assert response.json()["results"][0]["id"] == acme_hub.id


def test_the_login_page_starts_a_session_the_api_accepts(client, dave, acme_hub):
    response = client.post("/accounts/login/", {"username": "dave", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/console/"
    assert client.get(HUBS).status_code == 200


def test_a_wrong_password_starts_no_session(client, dave):
    client.post("/accounts/login/", {"username": "dave", "password": "wrong-password"})

    assert client.get(HUBS).status_code == 401


def test_session_writes_need_the_csrf_token(dave):
    browser = APIClient(enforce_csrf_checks=True)
    browser.login(username="dave", password=PASSWORD)

    response = browser.post(HUBS, {"name": "x"}, format="json")

    assert_error_shape(response, 403, "permission_denied")
    assert "CSRF" in response.json()["message"]


def test_key_requests_need_no_csrf_token(acme):
    _, key = api_client_create(org=acme, name="ERP", scopes=["hubs:write"])
    partner = APIClient(enforce_csrf_checks=True)
    partner.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = {"name": "ERP hub", "code": "ERP1", "timezone": "Europe/Berlin", "address_line1": "a", "city": "b",
            "country": "DE", "lat": 52.5, "lng": 13.4}

    assert partner.post(HUBS, body, format="json").status_code == 201


def test_me_describes_the_session_user(as_dave, dave):
    me = as_dave.get("/api/v1/me/").json()

    assert me["user"] == {"id": dave.pk, "username": "dave", "name": "Dave"}
    assert me["role"] == "dispatcher"
    assert me["organization"]["slug"] == "acme"
    assert "accounts:write" not in me["scopes"]


def test_me_tells_a_driver_their_driver_id(as_bob, bob):
    me = as_bob.get("/api/v1/me/").json()

    assert (me["role"], me["driver_id"]) == ("driver", bob.id)


# --- no membership, no credentials --------------------------------------------------


def test_a_user_without_membership_gets_403(db):
    stray = get_user_model().objects.create_user(username="stray", password=PASSWORD)

    response = client_for(stray).get(HUBS)

    assert_error_shape(response, 403, "permission_denied")
    assert response.json()["message"] == "This account does not belong to an organization."


def test_a_user_without_membership_gets_403_from_me_too(db):
    stray = get_user_model().objects.create_user(username="stray", password=PASSWORD)

    assert_error_shape(client_for(stray).get("/api/v1/me/"), 403, "permission_denied")


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", HUBS), ("post", HUBS), ("get", ORDERS), ("get", "/api/v1/me/"), ("get", "/api/v1/events/"),
     ("get", "/api/v1/api-clients/")],
)
def test_anonymous_gets_401_with_the_json_error_shape(anonymous, db, method, path):
    response = getattr(anonymous, method)(path, format="json") if method == "post" else anonymous.get(path)

    assert_error_shape(response, 401, "not_authenticated")
    assert response.json()["message"] == "Log in or send an API key."
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_inactive_user_cannot_log_in(dave):
    dave.is_active = False
    dave.save()

    assert not APIClient().login(username="dave", password=PASSWORD)
