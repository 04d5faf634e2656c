"""Password guessing on the sign-in form is slowed down; real users are not."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD, member


@pytest.fixture
def tight_limits(settings):
    settings.LOGIN_THROTTLE_PER_USERNAME = 3
    settings.LOGIN_THROTTLE_PER_ADDRESS = 5
    settings.LOGIN_THROTTLE_WINDOW_S = 300


def _login(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_a_username_is_locked_after_repeated_failures_even_with_the_right_password(acme, tight_limits):
    member(acme, "throttle-ann", "dispatcher")
    client = Client()
    for _ in range(3):
        assert _login(client, "throttle-ann", "wrong").status_code == 200  # the form again, with an error

    response = _login(client, "throttle-ann", PASSWORD)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_guessing_many_usernames_from_one_address_is_limited(acme, tight_limits):
    client = Client()
    for n in range(5):
        _login(client, f"guess-{n}", "wrong", address="198.51.100.9")

    assert _login(client, "guess-new", "wrong", address="198.51.100.9").status_code == 429
    # Someone else, elsewhere, signs in normally.
    member(acme, "throttle-ben", "dispatcher")
    assert _login(Client(), "throttle-ben", PASSWORD, address="192.0.2.44").status_code == 302


@pytest.mark.django_db
def test_a_successful_sign_in_resets_the_usernames_count(acme, tight_limits):
    member(acme, "throttle-cem", "dispatcher")
    for address in ("192.0.2.1", "192.0.2.2"):
        _login(Client(), "throttle-cem", "wrong", address)
    assert _login(Client(), "throttle-cem", PASSWORD, "192.0.2.3").status_code == 302
    for address in ("192.0.2.4", "192.0.2.5"):
        _login(Client(), "throttle-cem", "wrong", address)
    # Four failures in the window, but never three since the last success.
    assert _login(Client(), "throttle-cem", PASSWORD, "192.0.2.6").status_code == 302
