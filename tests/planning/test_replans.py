"""Exceptions during the day re-plan the affected routes: from where each van is,
keeping what is done, pins respected, shown as a diff, applied all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.accounts.actor import system_actor
from apps.dispatch.models import Order, OrderState, Route, Stop, StopState
from apps.dispatch.services.routes import route_set_stops, route_start
from apps.dispatch.services.stops import stop_arrive, stop_complete, stop_fail
from apps.events.models import Event
from apps.planning.models import ExceptionStatus, OpsException, PlanningPolicy, PlanRun, PlanStatus
from apps.planning.replans import replan_execute
from apps.planning.services import plan_execute, plan_publish

from .conftest import make_orders

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Berlin


@pytest.fixture
def on_the_road(acme, acme_hub, fleet, day, dave):
    """The day was planned and published at 07:00 UTC; every driver has set off and done one stop."""
    make_orders(acme, acme_hub, 18, seed=7)
    PlanningPolicy.objects.create(org=acme, replan_time_limit_s=0.3)  # quick replans for tests
    actor = system_actor(acme)
    from apps.planning.inputs import PlanIn
    from apps.planning.services import plan_request

    with time_machine.travel(datetime(2026, 11, 23, 7, 0, tzinfo=UTC), tick=False):
        plan = plan_request(actor=actor, data=PlanIn(hub=acme_hub.pk, date=day.isoformat(), time_limit_s=0.5))
        plan_execute(plan_id=plan.pk)
        plan = plan_publish(actor=actor, plan=PlanRun.objects.get(pk=plan.pk))
    routes = list(Route.objects.filter(pk__in=plan.route_ids).order_by("id"))
    with time_machine.travel(NOON, tick=False):
        for route in routes:
            route_start(actor=actor, route=route)
            first = route.stops.order_by("sequence").first()
            stop_complete(actor=actor, stop=first)
    assert len(routes) >= 2
    return routes


def report(client, **body):
    with time_machine.travel(NOON, tick=False):
        response = client.post("/api/v1/exceptions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def run(plan_id):
    with time_machine.travel(NOON, tick=True):
        return replan_execute(plan_id=plan_id, now=NOON)


def pending(route):
    return list(route.stops.filter(state=StopState.PENDING).order_by("sequence").values_list("order_id", flat=True))


def test_a_breakdown_hands_the_vans_open_stops_to_the_others(as_dave, on_the_road):
    broken = on_the_road[0]
    orphans = pending(broken)
    done = list(broken.stops.exclude(state=StopState.PENDING).values_list("order_id", flat=True))
    versions = {r.pk: r.version for r in on_the_road}
    exc = report(as_dave, kind="vehicle_breakdown", route=broken.pk)
    assert exc["status"] == "open" and exc["replan"]

    plan = run(exc["replan"])

    assert plan.status == PlanStatus.READY
    diff = plan.diff
    moved = {m["order_id"]: m for m in diff["moved"]}
    assert set(moved) == set(orphans)
    assert all(m["from_driver_id"] == broken.driver_id for m in moved.values())
    assert diff["before"]["distance_m"] > 0 and diff["after"]["distance_m"] > 0
    assert OpsException.objects.get(pk=exc["id"]).status == ExceptionStatus.PROPOSED
    assert Route.objects.get(pk=broken.pk).version == versions[broken.pk]  # proposed, not applied

    response = as_dave.post(f"/api/v1/plans/{plan.pk}/apply/")

    assert response.status_code == 200, response.json()
    assert pending(Route.objects.get(pk=broken.pk)) == []
    # What was done stays done, on the broken route.
    assert list(Route.objects.get(pk=broken.pk).stops.exclude(state=StopState.PENDING)
                .values_list("order_id", flat=True)) == done
    served = {o for r in on_the_road[1:] for o in pending(Route.objects.get(pk=r.pk))}
    unassigned = {u["order_id"] for u in diff["unassigned"]}
    assert set(orphans) <= served | unassigned
    for route in on_the_road:
        assert Route.objects.get(pk=route.pk).version > versions[route.pk] or not any(
            m["to_driver_id"] == route.driver_id for m in moved.values())
    rerouted = Event.objects.filter(type="route.updated", payload__route_id__in=[r.pk for r in on_the_road])
    assert {e.payload["driver_id"] for e in rerouted} >= {m["to_driver_id"] for m in moved.values() if m["to_driver_id"]}
    assert OpsException.objects.get(pk=exc["id"]).status == ExceptionStatus.APPLIED
    assert Event.objects.filter(type="replan.applied", subject_id=str(plan.pk)).exists()
    # The orders moved are out for delivery on their new routes.
    assert set(Order.objects.filter(pk__in=served).values_list("state", flat=True)) == {OrderState.OUT_FOR_DELIVERY}


def test_a_driver_who_becomes_unavailable_is_replanned_like_a_breakdown(as_dave, on_the_road):
    gone = on_the_road[1]
    exc = report(as_dave, kind="driver_unavailable", driver=gone.driver_id)
    assert exc["route"] == gone.pk
    plan = run(exc["replan"])
    assert {m["order_id"] for m in plan.diff["moved"]} == set(pending(gone))
    assert as_dave.post(f"/api/v1/plans/{plan.pk}/apply/").status_code == 200
    assert pending(Route.objects.get(pk=gone.pk)) == []


def test_an_urgent_order_is_added_to_a_route_on_the_road(as_dave, acme, acme_hub, on_the_road):
    urgent = make_orders(acme, acme_hub, 1, seed=99, start=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))[0]
    exc = report(as_dave, kind="urgent_order", order=urgent.pk)
    plan = run(exc["replan"])
    assert next(m for m in plan.diff["moved"] if m["order_id"] == urgent.pk)["from_driver_id"] is None
    as_dave.post(f"/api/v1/plans/{plan.pk}/apply/")
    urgent.refresh_from_db()
    assert urgent.state == OrderState.OUT_FOR_DELIVERY and urgent.priority == 3
    assert Stop.objects.filter(order=urgent, state=StopState.PENDING).exists()


def test_a_failed_delivery_is_reattempted_later_today_when_its_window_allows(as_dave, acme, on_the_road):
    route = on_the_road[0]
    stop = route.stops.filter(state=StopState.PENDING).order_by("sequence").first()
    Order.objects.filter(pk=stop.order_id).update(window_end=datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
    with time_machine.travel(NOON, tick=False):
        stop_fail(actor=system_actor(acme), stop=stop, reason="recipient_absent")
    exc = report(as_dave, kind="failed_delivery", stop=stop.pk)
    assert exc["details"]["outcome"] == "reattempt"
    plan = run(exc["replan"])
    assert stop.order_id in {m["order_id"] for m in plan.diff["moved"]}
    assert as_dave.post(f"/api/v1/plans/{plan.pk}/apply/").status_code == 200
    attempts = Stop.objects.filter(order_id=stop.order_id).order_by("id")
    assert [s.state for s in attempts] == [StopState.COMPLETED, StopState.PENDING]  # a new stop for the new attempt


def test_a_failed_delivery_goes_back_to_the_pool_when_policy_says_return(as_dave, acme, on_the_road):
    PlanningPolicy.objects.filter(org=acme).update(failed_delivery="return")
    stop = on_the_road[0].stops.filter(state=StopState.PENDING).first()
    with time_machine.travel(NOON, tick=False):
        stop_fail(actor=system_actor(acme), stop=stop, reason="recipient_absent")
    exc = report(as_dave, kind="failed_delivery", order=stop.order_id)
    assert exc["status"] == "applied" and exc["replan"] is None
    assert Order.objects.get(pk=stop.order_id).state == OrderState.CREATED


def test_a_late_driver_gets_the_routes_resequenced_and_the_diff_shows_windows(as_dave, on_the_road):
    exc = report(as_dave, kind="late_risk", route=on_the_road[0].pk)
    plan = run(exc["replan"])
    assert plan.status == PlanStatus.READY
    for side in ("before", "after"):
        assert set(plan.diff[side]) == {"distance_m", "duration_s", "late", "at_risk"}
    assert plan.diff["after"]["late"] == 0  # a plan never promises a late visit
    assert {r["route_id"] for r in plan.diff["routes"]} == {r.pk for r in on_the_road}


def test_a_cancelled_order_leaves_its_route_which_is_resequenced(as_dave, on_the_road):
    route = on_the_road[0]
    order_id = pending(route)[0]
    exc = report(as_dave, kind="order_cancelled", order=order_id)
    assert Order.objects.get(pk=order_id).state == OrderState.CANCELLED
    plan = run(exc["replan"])
    assert plan.route_ids == [route.pk]
    assert order_id not in [o for r in plan.diff["routes"] for o in r["after"]]


def test_an_order_whose_address_changed_is_replanned_on_its_route(as_dave, on_the_road):
    route = on_the_road[0]
    order_id = pending(route)[-1]
    Order.objects.filter(pk=order_id).update(lat=52.56, lng=13.30)
    exc = report(as_dave, kind="order_changed", order=order_id)
    plan = run(exc["replan"])
    assert plan.route_ids == [route.pk]
    assert order_id in [o for r in plan.diff["routes"] for o in r["after"]] or \
        order_id in [u["order_id"] for u in plan.diff["unassigned"]]


def test_exceptions_arriving_together_share_one_replan(as_dave, acme, acme_hub, on_the_road):
    first = report(as_dave, kind="late_risk", route=on_the_road[0].pk)
    urgent = make_orders(acme, acme_hub, 1, seed=5, start=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))[0]
    second = report(as_dave, kind="urgent_order", order=urgent.pk)
    third = report(as_dave, kind="vehicle_breakdown", route=on_the_road[1].pk)
    assert first["replan"] == second["replan"] == third["replan"]
    assert PlanRun.objects.filter(kind="replan").count() == 1
    plan = run(first["replan"])
    assert plan.status == PlanStatus.READY
    assert set(OpsException.objects.values_list("status", flat=True)) == {ExceptionStatus.PROPOSED}
    moved = {m["order_id"] for m in plan.diff["moved"]}
    assert urgent.pk in moved and set(pending(on_the_road[1])) <= moved


def test_pinned_stops_stay_with_their_driver_in_their_order(as_dave, on_the_road):
    keeper, broken = on_the_road[0], on_the_road[1]
    last_two = pending(keeper)[-2:]
    stops = {s.order_id: s for s in keeper.stops.filter(order_id__in=last_two)}
    for order_id in reversed(last_two):  # pinned in the reverse of their current order is still "their order"
        assert as_dave.post("/api/v1/stop-pins/", {"stop": stops[order_id].pk, "kind": "sequence"},
                            format="json").status_code == 204
    exc = report(as_dave, kind="vehicle_breakdown", route=broken.pk)
    plan = run(exc["replan"])
    after = next(r for r in plan.diff["routes"] if r["route_id"] == keeper.pk)["after"]
    assert after[:2] == last_two


def test_a_replan_that_finds_the_routes_changed_applies_nothing(as_dave, acme, on_the_road):
    exc = report(as_dave, kind="vehicle_breakdown", route=on_the_road[0].pk)
    plan = run(exc["replan"])
    other = on_the_road[1]
    route_set_stops(actor=system_actor(acme), route=Route.objects.get(pk=other.pk), order_ids=pending(other)[::-1])
    before = {r.pk: (Route.objects.get(pk=r.pk).version, pending(r)) for r in on_the_road}

    response = as_dave.post(f"/api/v1/plans/{plan.pk}/apply/")

    assert response.status_code == 409 and response.json()["code"] == "version_conflict"
    assert {r.pk: (Route.objects.get(pk=r.pk).version, pending(r)) for r in on_the_road} == before


def test_with_auto_apply_a_replan_is_applied_by_the_job(as_dave, acme, on_the_road):
    PlanningPolicy.objects.filter(org=acme).update(auto_apply=True)
    exc = report(as_dave, kind="vehicle_breakdown", route=on_the_road[0].pk)
    plan = run(exc["replan"])
    assert plan.status == PlanStatus.PUBLISHED
    assert pending(Route.objects.get(pk=on_the_road[0].pk)) == []
    assert OpsException.objects.get(pk=exc["id"]).status == ExceptionStatus.APPLIED


def test_a_replan_that_crashes_leaves_the_plan_untouched_and_raises_an_alert(as_dave, on_the_road, monkeypatch):
    from apps.planning import replans

    monkeypatch.setattr(replans, "solve", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("solver on fire")))
    before = {r.pk: (Route.objects.get(pk=r.pk).version, pending(r)) for r in on_the_road}
    exc = report(as_dave, kind="vehicle_breakdown", route=on_the_road[0].pk)
    plan = run(exc["replan"])
    assert plan.status == PlanStatus.FAILED
    assert OpsException.objects.get(pk=exc["id"]).status == ExceptionStatus.FAILED
    alert = Event.objects.get(type="replan.failed", subject_id=str(plan.pk))
    assert "solver on fire" in alert.payload["error"]
    assert {r.pk: (Route.objects.get(pk=r.pk).version, pending(r)) for r in on_the_road} == before


def test_a_replan_starts_each_van_where_it_is_and_keeps_the_stop_in_progress(acme, acme_hub, on_the_road, day):
    from apps.planning.problem_input import stop_id
    from apps.planning.replans import _gather, _positions

    route = on_the_road[0]
    here = route.stops.filter(state=StopState.PENDING).order_by("sequence").first()
    with time_machine.travel(NOON, tick=False):
        stop_arrive(actor=system_actor(acme), stop=here)
    pos = _positions([Route.objects.get(pk=route.pk)], NOON)[route.driver_id]
    assert pos.point == (here.order.lat, here.order.lng)
    assert (pos.free_at - NOON).total_seconds() == here.order.service_time_s  # busy until the service ends

    plan = PlanRun.objects.create(org=acme, hub=acme_hub, date=day, kind="replan", route_ids=[route.pk])
    pi, _before, _versions = _gather(plan, NOON)
    ids = {s.id for s in pi.problem.stops}
    assert stop_id(here.order_id) not in ids  # in progress: fixed, not re-planned
    assert not ids & {stop_id(s.order_id) for s in route.stops.filter(state=StopState.COMPLETED)}
    van = pi.problem.vehicle(f"d{route.driver_id}")
    assert pi.points[van.start] == (here.order.lat, here.order.lng)
    assert pi.at(van.shift.start) == pos.free_at
    assert pi.current[f"d{route.driver_id}"] == [stop_id(o) for o in pending(route)]


def test_carol_cannot_report_against_acme_or_see_its_exceptions(as_carol, as_dave, on_the_road):
    exc = report(as_dave, kind="late_risk", route=on_the_road[0].pk)
    response = as_carol.post("/api/v1/exceptions/", {"kind": "late_risk", "route": on_the_road[0].pk}, format="json")
    assert response.status_code == 400 and "route" in response.json()["fields"]
    assert as_carol.get(f"/api/v1/exceptions/{exc['id']}/").status_code == 404
    assert as_carol.get("/api/v1/exceptions/").json()["results"] == []
    assert as_carol.post(f"/api/v1/plans/{exc['replan']}/apply/").status_code == 404


def test_a_route_whose_etas_run_past_a_window_is_reported_late_once(acme, on_the_road):
    from apps.planning.replans import late_risk_scan

    route = on_the_road[0]
    stop = route.stops.filter(state=StopState.PENDING).order_by("sequence").first()
    Stop.objects.filter(pk=stop.pk).update(eta=stop.order.window_end + timedelta(minutes=20))

    with time_machine.travel(NOON, tick=False):
        first = late_risk_scan(org=acme, now=NOON)
        again = late_risk_scan(org=acme, now=NOON)

    assert [e.route_id for e in first] == [route.pk] and first[0].kind == "late_risk"
    assert first[0].replan is not None  # its replan is queued
    assert again == []  # already waiting for that replan


def test_with_auto_apply_the_inserted_plan_is_applied_before_any_search(as_dave, acme, on_the_road, monkeypatch):
    from apps.planning import replans

    PlanningPolicy.objects.filter(org=acme).update(auto_apply=True)
    calls = []
    real = replans.solve
    monkeypatch.setattr(replans, "solve", lambda *a, **k: calls.append(k.get("engine", "auto")) or real(*a, **k))
    exc = report(as_dave, kind="vehicle_breakdown", route=on_the_road[0].pk)

    plan = run(exc["replan"])

    assert calls[0] == "insertion"
    assert plan.status == PlanStatus.PUBLISHED and plan.result["engine"] == "insertion"
    # The search ran after the drivers had the inserted plan; a better plan is a follow-up.
    assert len(calls) == 2
    for follow in PlanRun.objects.filter(org=acme).exclude(pk=plan.pk).filter(kind="replan"):
        assert follow.diff["improves"] == plan.pk


def test_when_a_stop_fits_nowhere_a_short_search_near_the_routes_makes_the_first_plan(
        as_dave, acme, on_the_road, monkeypatch):
    from dataclasses import replace

    from apps.dispatch.optimization.problem import Unassigned
    from apps.planning import replans

    PlanningPolicy.objects.filter(org=acme).update(auto_apply=True)
    calls = []
    real = replans.solve

    def solve(problem, **kwargs):
        calls.append((kwargs.get("engine", "auto"), kwargs.get("search_from")))
        plan = real(problem, **kwargs)
        if kwargs.get("engine") == "insertion":  # as if one orphan had found no room
            return replace(plan, unassigned=(Unassigned(stop=problem.stops[0].id, code="no_room", reason="full"),))
        return plan

    monkeypatch.setattr(replans, "solve", solve)
    exc = report(as_dave, kind="vehicle_breakdown", route=on_the_road[0].pk)

    plan = run(exc["replan"])

    assert calls[:2] == [("insertion", None), ("auto", "warm")]
    assert plan.status == PlanStatus.PUBLISHED and plan.result["engine"] != "insertion"
