"""Plan the day: a dispatcher asks for a plan, a job optimizes with progress, the
draft is reviewed and published as routes that reach the drivers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from apps.dispatch.models import Order, OrderState, Route, RouteStatus
from apps.dispatch.optimization.feasibility import check
from apps.events.models import Event
from apps.planning.models import PlanRun, PlanStatus
from apps.planning.services import plan_execute, plan_recover_stale
from apps.planning.tasks import run_plan
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/plans/"


def request_plan(client, hub, day, **extra):
    return client.post(URL, {"hub": hub.pk, "date": day.isoformat(), "time_limit_s": 0.5, **extra}, format="json")


def test_dave_plans_the_day_and_the_draft_serves_every_order(as_dave, acme_hub, fleet, day_orders, day,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = request_plan(as_dave, acme_hub, day)
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued"
    assert callbacks, "the job is queued after commit"
    plan_id = response.json()["id"]

    run_plan.call(plan_id)

    body = as_dave.get(f"{URL}{plan_id}/").json()
    assert body["status"] == "ready" and body["stage"] == "done"
    draft = body["result"]
    planned = [s["order_id"] for r in draft["routes"] for s in r["stops"]]
    assert sorted(planned) == sorted(o.pk for o in day_orders)
    assert draft["unassigned"] == []
    assert {r["driver_id"] for r in draft["routes"]} <= {d.pk for d in fleet}
    for route in draft["routes"]:
        for stop in route["stops"]:
            order = Order.objects.get(pk=stop["order_id"])
            assert order.window_start <= datetime.fromisoformat(stop["start"]) <= order.window_end
    types = list(Event.objects.filter(subject_type="plan", subject_id=str(plan_id)).values_list("type", flat=True))
    assert types[0] == "plan.requested" and types[-1] == "plan.ready"
    assert "plan.progress" in types
    # Nothing changed on the road yet: a draft is only a draft.
    assert not Route.objects.exists()
    assert set(Order.objects.values_list("state", flat=True)) == {OrderState.CREATED}


def test_the_draft_keeps_every_window_and_capacity_when_rechecked(acme, acme_hub, fleet, day_orders, day, dave):
    from apps.accounts.actor import system_actor
    from apps.dispatch.optimization.solve import solve
    from apps.planning.problem_input import day_input

    pi = day_input(hub=acme_hub, day=day, drivers=fleet, orders=day_orders)
    plan = solve(pi.problem, time_limit_s=0.5)
    assert check(pi.problem, plan) == []
    assert plan.complete
    assert system_actor(acme).org == acme


def test_publishing_the_draft_creates_published_routes_for_the_drivers(as_dave, acme_hub, fleet, day_orders, day):
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    plan_execute(plan_id=plan_id)

    response = as_dave.post(f"{URL}{plan_id}/publish/")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "published"
    routes = Route.objects.filter(pk__in=body["route_ids"])
    assert routes.count() == len(body["route_ids"]) >= 1
    assert {r.status for r in routes} == {RouteStatus.PUBLISHED}
    assert set(Order.objects.values_list("state", flat=True)) == {OrderState.DISPATCHED}
    draft = body["result"]
    for spec in draft["routes"]:
        if spec["stops"]:
            route = routes.get(driver_id=spec["driver_id"])
            assert list(route.stops.order_by("sequence").values_list("order_id", flat=True)) == \
                [s["order_id"] for s in spec["stops"]]
    published = Event.objects.filter(type="route.published").values_list("payload__driver_id", flat=True)
    assert set(published) == {s["driver_id"] for s in draft["routes"] if s["stops"]}
    assert Event.objects.filter(type="plan.published", subject_id=str(plan_id)).exists()

    again = as_dave.post(f"{URL}{plan_id}/publish/")
    assert again.status_code == 409 and again.json()["code"] == "plan_not_ready"


def test_a_draft_whose_orders_were_planned_meanwhile_does_not_publish_at_all(as_dave, acme_hub, fleet, day_orders, day):
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    plan_execute(plan_id=plan_id)
    taken = day_orders[0]
    as_dave.post("/api/v1/routes/", {"hub": acme_hub.pk, "date": day.isoformat(), "orders": [taken.pk]}, format="json")
    routes_before = Route.objects.count()

    response = as_dave.post(f"{URL}{plan_id}/publish/")

    assert response.status_code == 409
    assert Route.objects.count() == routes_before
    assert PlanRun.objects.get(pk=plan_id).status == PlanStatus.READY


def test_an_order_no_van_can_carry_comes_back_unassigned_with_its_reason(as_dave, acme, acme_hub, fleet, day):
    OrderFactory(org=acme, hub=acme_hub, external_id="FRIDGE", required_skills=["refrigerated"])
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    plan_execute(plan_id=plan_id)
    draft = as_dave.get(f"{URL}{plan_id}/").json()["result"]
    assert draft["unassigned"][0]["code"] == "skill_missing"
    assert "refrigerated" in draft["unassigned"][0]["reason"]


def test_only_the_chosen_drivers_and_orders_are_planned(as_dave, acme_hub, fleet, day_orders, day):
    chosen = [o.pk for o in day_orders[:4]]
    plan_id = request_plan(as_dave, acme_hub, day, drivers=[fleet[1].pk], orders=chosen).json()["id"]
    plan_execute(plan_id=plan_id)
    draft = as_dave.get(f"{URL}{plan_id}/").json()["result"]
    assert {r["driver_id"] for r in draft["routes"]} == {fleet[1].pk}
    assert sorted(s["order_id"] for r in draft["routes"] for s in r["stops"]) == sorted(chosen)


@pytest.mark.parametrize(("body", "field"), [
    ({"date": "2026-02-30"}, "date"), ({"date": "0001-01-01"}, "date"),
    ({"time_limit_s": 0}, "time_limit_s"), ({"time_limit_s": 1e9}, "time_limit_s"),
    ({"drivers": [999999]}, "drivers"), ({"surprise": 1}, "surprise"),
])
def test_bad_requests_are_400s_with_the_field(as_dave, acme_hub, fleet, day, body, field):
    response = as_dave.post(URL, {"hub": acme_hub.pk, "date": day.isoformat(), **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not PlanRun.objects.exists()


def test_an_order_already_on_a_route_cannot_be_chosen(as_dave, acme_hub, fleet, day_orders, day):
    day_orders[0].state = OrderState.PLANNED
    day_orders[0].save()
    response = request_plan(as_dave, acme_hub, day, orders=[day_orders[0].pk])
    assert response.status_code == 422 and response.json()["code"] == "orders_not_plannable"


def test_carol_sees_no_acme_plan_and_cannot_plan_acmes_hub(as_dave, as_carol, acme_hub, fleet, day_orders, day):
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    assert as_carol.get(f"{URL}{plan_id}/").status_code == 404
    assert as_carol.post(f"{URL}{plan_id}/publish/").status_code == 404
    assert as_carol.get(URL).json()["results"] == []
    response = request_plan(as_carol, acme_hub, day)
    assert response.status_code == 400 and "hub" in response.json()["fields"]


def test_bob_the_driver_cannot_see_or_make_plans(as_bob, as_dave, acme_hub, fleet, day):
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    assert as_bob.get(f"{URL}{plan_id}/").status_code == 403
    assert request_plan(as_bob, acme_hub, day).status_code == 403


def test_a_job_runs_once_even_if_delivered_twice(as_dave, acme_hub, fleet, day_orders, day):
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    assert plan_execute(plan_id=plan_id).status == PlanStatus.READY
    assert plan_execute(plan_id=plan_id) is None
    assert Event.objects.filter(type="plan.ready", subject_id=str(plan_id)).count() == 1


def test_a_run_whose_worker_died_is_queued_again(as_dave, acme_hub, fleet, day, django_capture_on_commit_callbacks):
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    PlanRun.objects.filter(pk=plan_id).update(status=PlanStatus.RUNNING,
                                              started_at=timezone.now() - timedelta(minutes=10))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert plan_recover_stale() == [plan_id]
    assert callbacks
    assert PlanRun.objects.get(pk=plan_id).status == PlanStatus.QUEUED
    assert plan_execute(plan_id=plan_id).status == PlanStatus.READY


def test_a_failing_job_ends_failed_with_an_event_not_stuck(as_dave, acme_hub, fleet, day_orders, day, monkeypatch):
    from apps.planning import services

    def boom(**kwargs):
        raise RuntimeError("matrix service down")

    monkeypatch.setattr(services, "day_input", boom)
    plan_id = request_plan(as_dave, acme_hub, day).json()["id"]
    plan = plan_execute(plan_id=plan_id)
    assert plan.status == PlanStatus.FAILED
    row = PlanRun.objects.get(pk=plan_id)
    assert row.status == PlanStatus.FAILED and "matrix service down" in row.error
    assert Event.objects.filter(type="plan.failed", subject_id=str(plan_id)).exists()


def test_the_planning_policy_is_read_and_changed_by_the_dispatcher_and_rejects_nulls(as_dave, as_carol, acme):
    assert as_dave.get("/api/v1/planning-policy/").json()["auto_apply"] is False
    changed = as_dave.patch("/api/v1/planning-policy/", {"auto_apply": True, "failed_delivery": "return"}, format="json")
    assert changed.status_code == 200 and changed.json()["auto_apply"] is True
    bad = as_dave.patch("/api/v1/planning-policy/", {"auto_apply": None}, format="json")
    assert bad.status_code == 400 and "auto_apply" in bad.json()["fields"]
    assert as_carol.get("/api/v1/planning-policy/").json()["auto_apply"] is False  # Globex has its own


def test_the_recover_command_requeues_a_replan_whose_worker_died(as_dave, acme, acme_hub, day,
                                                                 django_capture_on_commit_callbacks):
    from io import StringIO

    from django.core.management import call_command

    stuck = PlanRun.objects.create(org=acme, hub=acme_hub, date=day, kind="replan", status=PlanStatus.RUNNING,
                                   started_at=timezone.now() - timedelta(minutes=5), time_limit_s=2)
    fresh = PlanRun.objects.create(org=acme, hub=acme_hub, date=day, kind="replan", status=PlanStatus.RUNNING,
                                   started_at=timezone.now(), time_limit_s=2)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=False):
        call_command("planning_recover", stdout=out)
    assert f"[{stuck.pk}]" in out.getvalue()
    assert PlanRun.objects.get(pk=stuck.pk).status == PlanStatus.QUEUED
    assert PlanRun.objects.get(pk=fresh.pk).status == PlanStatus.RUNNING  # still within its time


@pytest.mark.parametrize("query", [{"date": "soon"}, {"kind": "weekly"}, {"status": "ready\x00"}])
def test_bad_list_filters_are_400s_naming_the_filter(as_dave, query):
    response = as_dave.get(URL, query)
    assert response.status_code == 400
    assert set(query) <= set(response.json()["fields"])
