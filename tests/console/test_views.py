"""Who may open the dispatcher console, and what the page is given to start with."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import override_settings

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="console-config" type="application/json">') + len(
        '<script id="console-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_it_sends_anonymous_visitors_to_the_login_page():
    response = Client().get("/console/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/console/"


def test_it_shows_the_console_to_a_dispatcher_with_the_org_name(dave):
    response = signed_in(dave).get("/console/")

    assert response.status_code == 200
    assert "Acme Deliveries" in response.content.decode()
    assert page_config(response)["orgName"] == "Acme Deliveries"


def test_it_shows_the_console_to_an_admin(alice):
    assert signed_in(alice).get("/console/").status_code == 200


def test_it_sends_drivers_to_their_app(bob):
    response = signed_in(bob.user).get("/console/")

    assert response.status_code == 302
    assert response["Location"] == "/driver/"


def test_it_refuses_users_outside_any_organization(db):
    stranger = get_user_model().objects.create_user(username="stranger", password=PASSWORD)

    response = signed_in(stranger).get("/console/")

    assert response.status_code == 403
    assert "does not belong to an organization" in response.content.decode()


def test_it_opens_on_today_in_the_org_timezone(dave, acme):
    # 23:30 UTC on 22 November is already 23 November in Berlin.
    with mock.patch("apps.console.views.timezone.now", return_value=datetime(2026, 11, 22, 23, 30, tzinfo=UTC)):
        config = page_config(signed_in(dave).get("/console/"))

    assert acme.timezone == "Europe/Berlin"
    assert config["today"] == "2026-11-23"
    assert config["date"] == "2026-11-23"


def test_it_opens_on_the_date_in_the_query_and_ignores_a_bad_one(dave):
    client = signed_in(dave)

    assert page_config(client.get("/console/?date=2026-12-01"))["date"] == "2026-12-01"
    assert page_config(client.get("/console/?date=tomorrow"))["date"] == page_config(client.get("/console/"))["today"]


@override_settings(MAP_TILE_URL="", MAP_TILE_ATTRIBUTION="")
def test_it_loads_no_map_tiles_unless_configured(dave):
    assert page_config(signed_in(dave).get("/console/"))["tileUrl"] == ""


@override_settings(MAP_TILE_URL="/tiles/{z}/{x}/{y}.png", MAP_TILE_ATTRIBUTION="© Us")
def test_it_passes_the_configured_tile_layer_to_the_page(dave):
    config = page_config(signed_in(dave).get("/console/"))

    assert config["tileUrl"] == "/tiles/{z}/{x}/{y}.png"
    assert config["tileAttribution"] == "© Us"


def test_the_login_page_signs_a_dispatcher_in_and_opens_the_console(dave):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200

    response = client.post("/accounts/login/", {"username": "dave", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/console/"


def test_the_login_page_says_when_the_password_is_wrong(dave):
    response = Client().post("/accounts/login/", {"username": "dave", "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def _import_map(response) -> dict:
    html = response.content.decode()
    start = html.index('<script type="importmap">') + len('<script type="importmap">')
    return json.loads(html[start : html.index("</script>", start)])["imports"]


def _modules_reachable_from(entry: Path, root: Path) -> set[str]:
    """Static paths ("console/map.js") of every module `entry` imports by relative path, transitively."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        for target in re.findall(r'^(?:import|export)\b[^;]*?from "(\.{1,2}/[^"]+)"', module.read_text(), re.M):
            path = (module.parent / target).resolve()
            name = path.relative_to(root).as_posix()
            if name not in seen:
                seen.add(name)
                todo.append(path)
    return seen


def test_the_import_map_names_every_module_the_console_imports(dave):
    # Production serves hashed file names (manifest storage); a relative import that
    # the import map does not redirect would load a stale, uncached copy.
    root = Path(settings.BASE_DIR) / "frontend"
    imports = _import_map(signed_in(dave).get("/console/"))

    needed = _modules_reachable_from(root / "console" / "console.js", root.resolve())

    assert {"common/live.js", "console/store.js", "console/markers.js"} <= needed
    assert sorted(f"/static/{name}" for name in needed if f"/static/{name}" not in imports) == []
