"""ETA accuracy: predicted against actual arrival, per organization and route."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.accounts.actor import system_actor
from apps.dispatch.models import Stop
from apps.dispatch.services.stops import stop_arrive, stop_complete
from apps.eta.models import StopPrediction
from apps.eta.selectors import _stats

from .test_live import with_route_started

URL = "/api/v1/eta-accuracy/"


def test_p90_is_the_nearest_rank_and_the_mean_is_of_absolute_errors():
    assert _stats([60.0, 120.0, 30.0, 600.0]) == {"count": 4, "mean_abs_s": 202.5, "p90_abs_s": 600.0}
    assert _stats([float(i) for i in range(1, 11)])["p90_abs_s"] == 9.0
    assert _stats([]) == {"count": 0, "mean_abs_s": None, "p90_abs_s": None}


@pytest.fixture
def worked_route(route, acme, clock, django_capture_on_commit_callbacks):
    """Bob sets off at 08:00 and reaches his first stop 4 minutes later than predicted,
    his second exactly on time."""
    actor = system_actor(acme)
    with_route_started(route, acme)
    first, second, _ = Stop.objects.filter(route=route).order_by("sequence")
    predicted = Stop.objects.get(pk=first.pk).eta
    clock.move_to(predicted + timedelta(minutes=4))
    with django_capture_on_commit_callbacks(execute=True):
        stop_arrive(actor=actor, stop=first)
        stop_complete(actor=actor, stop=first)
    clock.move_to(Stop.objects.get(pk=second.pk).eta)
    with django_capture_on_commit_callbacks(execute=True):
        stop_complete(actor=actor, stop=second)  # never tapped "arrived": completion counts
    return route


def test_dave_sees_the_error_of_each_completed_stop_per_route_and_overall(as_dave, worked_route):
    body = as_dave.get(URL, {"from": "2026-11-23", "to": "2026-11-23"}).json()

    departure = body["organization"]["departure"]
    assert departure == {"count": 2, "mean_abs_s": 120.0, "p90_abs_s": 240.0}
    assert body["organization"]["first"]["count"] == 2
    (route,) = body["routes"]
    assert (route["route_id"], route["driver"], route["departure"]["count"]) == (worked_route.pk, "Bob Baker", 2)


def test_the_first_eta_of_the_day_is_measured_as_well(as_dave, worked_route):
    first_stop = Stop.objects.filter(route=worked_route).order_by("sequence").first()
    prediction = StopPrediction.objects.get(stop=first_stop)

    body = as_dave.get(URL, {"from": "2026-11-23"}).json()

    assert prediction.first_eta == prediction.departure_eta  # published at 08:00 and set off at 08:00
    assert body["organization"]["first"]["p90_abs_s"] == 240.0


def test_the_default_is_today_in_the_organizations_time_zone(as_dave, worked_route):
    body = as_dave.get(URL).json()

    assert body["date_from"] == body["date_to"] == "2026-11-23"


def test_carol_sees_nothing_of_acmes_accuracy(as_carol, worked_route):
    body = as_carol.get(URL, {"from": "2026-11-23"}).json()

    assert body["routes"] == [] and body["organization"]["departure"]["count"] == 0


@pytest.mark.parametrize(("params", "field"), [({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
                                               ({"from": "2026-11-24", "to": "2026-11-23"}, "from"),
                                               ({"from": "2026-01-01", "to": "2026-11-23"}, "from")])
def test_bad_dates_are_a_400_naming_the_field(as_dave, clock, params, field):
    response = as_dave.get(URL, params)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error" and field in response.json()["fields"]


def test_an_anonymous_caller_gets_a_401(anonymous, db):
    assert anonymous.get(URL).status_code == 401


def test_the_console_shows_the_days_accuracy_per_route(client, dave, worked_route):
    client.force_login(dave)

    page = client.get("/console/eta-accuracy/", {"date": "2026-11-23"}).content.decode()

    assert "All routes" in page and "Bob Baker" in page
    assert "2.0 / 4.0" in page  # departure: mean 2 minutes, p90 4 minutes


def test_the_accuracy_page_is_for_dispatchers_only(client, bob, clock):
    client.force_login(bob.user)

    assert client.get("/console/eta-accuracy/").status_code == 403
