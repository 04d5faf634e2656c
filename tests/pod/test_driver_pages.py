"""The driver app's shell, manifest and service worker."""

from __future__ import annotations

import json

from django.test import Client

from tests.factories import PASSWORD


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_app_opens_for_a_driver_with_their_facts(bob):
    response = signed_in(bob.user).get("/driver/")

    assert response.status_code == 200
    config = json.loads(response.content.decode().split('id="driver-config" type="application/json">')[1]
                        .split("</script>")[0])
    assert config["driverId"] == bob.pk and config["driverName"] == "Bob Baker"
    assert {"code": "recipient_absent", "label": "Recipient absent"} in config["failureReasons"]
    assert 'rel="manifest"' in response.content.decode()
    assert "no-cache" in response["Cache-Control"]


def test_a_dispatcher_is_told_it_is_the_drivers_app(dave):
    response = signed_in(dave).get("/driver/")

    assert response.status_code == 403
    assert "The driver app is for drivers" in response.content.decode()


def test_signed_out_visitors_go_to_the_login_and_come_back(db):
    response = Client().get("/driver/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/driver/"


def test_a_driver_signing_in_lands_in_the_app(bob):
    bob.user.set_password(PASSWORD)
    bob.user.save()
    client = Client()

    response = client.post("/accounts/login/", {"username": bob.user.username, "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == "/driver/"


def test_the_manifest_makes_the_app_installable(db):
    body = Client().get("/driver/manifest.webmanifest").json()

    assert body["start_url"] == "/driver/" and body["display"] == "standalone"
    assert {icon["sizes"] for icon in body["icons"]} == {"192x192", "512x512"}


def test_the_service_worker_caches_the_shell_from_the_drivers_scope(db):
    response = Client().get("/driver/sw.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/driver/"
    source = response.content.decode()
    assert "self.__SHELL__" not in source and '"/driver/"' in source
    assert "/static/driver/driver.js" in source and "/static/vendor/signature_pad/signature_pad.js" in source


def test_every_shell_file_exists(db):
    from django.contrib.staticfiles import finders

    from apps.pod.views import SHELL_STATIC

    assert [name for name in SHELL_STATIC if finders.find(name) is None] == []
