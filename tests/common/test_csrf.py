"""CSRF on every browser form: no browser-facing view opts out, and forms refuse a
cross-site POST. Machine endpoints that authenticate by signature (inbound webhooks)
are the only exemptions, each listed with its reason."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from tests.factories import PASSWORD

# url name -> why it may skip CSRF (no cookie-authenticated browser ever posts to it).
EXEMPT: dict[str, str] = {
    "hook-receive": "partner webhooks carry no cookie; each is verified by its HMAC signature before parsing",
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _browser_routes():
    # DRF views are csrf_exempt at the Django level and enforce CSRF themselves for
    # session-authenticated requests (tests/accounts/test_authentication.py proves it).
    return [(route, p) for route, p in _walk(get_resolver().url_patterns) if not route.startswith("api/")
            and not getattr(getattr(p.callback, "cls", None), "authentication_classes", None)]


def test_no_browser_view_skips_csrf_unless_listed_with_a_reason():
    skipping = sorted(p.name or route for route, p in _browser_routes()
                      if getattr(p.callback, "csrf_exempt", False) and (p.name or route) not in EXEMPT)
    assert not skipping, f"these views are csrf_exempt; give each a reason in EXEMPT or protect them: {skipping}"


@pytest.mark.django_db
def test_a_cross_site_login_post_is_refused(dave):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/accounts/login/", {"username": "dave", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


@pytest.mark.django_db
def test_a_cross_site_logout_post_is_refused(dave):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(dave)
    assert browser.post("/accounts/logout/").status_code == 403
    assert browser.get("/api/v1/me/").status_code == 200  # still signed in


@pytest.mark.django_db
def test_an_admin_change_without_the_token_is_refused(alice, acme_hub):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    response = browser.post(f"/admin/dispatch/hub/{acme_hub.pk}/change/", {"name": "Hijacked"})
    assert response.status_code == 403
    acme_hub.refresh_from_db()
    assert acme_hub.name != "Hijacked"
