"""Every legal and every illegal lifecycle transition, for orders, stops and routes."""

from __future__ import annotations

import pytest

from apps.common.exceptions import InvalidTransition
from apps.dispatch.lifecycle import (
    ORDER_TRANSITIONS,
    ROUTE_TRANSITIONS,
    STOP_TRANSITIONS,
    order_transition,
    route_transition,
    stop_transition,
)
from apps.dispatch.models import Order, OrderOutcome, OrderState, Route, RouteStatus, Stop, StopOutcome, StopState

# The lifecycle the product promises (the words), written out independently
# of the implementation's table so a change to either is caught here.
EXPECTED_ORDER = {
    ("plan", "created"): "planned",
    ("unplan", "planned"): "created",
    ("unplan", "dispatched"): "created",
    ("unplan", "out_for_delivery"): "created",
    ("dispatch", "planned"): "dispatched",
    ("recall", "dispatched"): "planned",
    ("start", "dispatched"): "out_for_delivery",
    ("deliver", "out_for_delivery"): "completed",
    ("fail", "out_for_delivery"): "completed",
    ("cancel", "created"): "cancelled",
    ("cancel", "planned"): "cancelled",
    ("cancel", "dispatched"): "cancelled",
    ("cancel", "out_for_delivery"): "cancelled",
    ("reschedule", "completed/failed"): "created",
    ("return", "completed/failed"): "returned",
}

ORDER_STATES = [
    ("created", ""), ("planned", ""), ("dispatched", ""), ("out_for_delivery", ""),
    ("completed", "delivered"), ("completed", "failed"), ("cancelled", ""), ("returned", "failed"),
]


def _state_key(state: str, outcome: str) -> str:
    return f"{state}/{outcome}" if state == "completed" else state


ORDER_CASES = [(action, state, outcome) for action in ORDER_TRANSITIONS for state, outcome in ORDER_STATES]


@pytest.mark.parametrize(("action", "state", "outcome"), ORDER_CASES,
                         ids=[f"{a}-from-{s}{'-' + o if o else ''}" for a, s, o in ORDER_CASES])
def test_an_order_transition_is_legal_exactly_when_the_lifecycle_allows_it(action, state, outcome):
    order = Order(state=state, outcome=outcome)
    expected = EXPECTED_ORDER.get((action, _state_key(state, outcome)))

    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            order_transition(order, action)
        assert caught.value.status_code == 409
        assert caught.value.details["current_state"].startswith(state)
        assert order.state == state
    else:
        order_transition(order, action)
        assert order.state == expected


def test_the_expected_table_covers_every_action_of_the_implementation():
    assert {a for a, _ in EXPECTED_ORDER} == set(ORDER_TRANSITIONS)


def test_leaving_completed_clears_the_outcome_but_returning_keeps_failed():
    rescheduled = Order(state="completed", outcome="failed")
    order_transition(rescheduled, "reschedule")
    returned = Order(state="completed", outcome="failed")
    order_transition(returned, "return")

    assert rescheduled.outcome == OrderOutcome.NONE
    assert returned.outcome == OrderOutcome.FAILED


def test_a_delivered_order_cannot_be_rescheduled_or_returned():
    for action in ("reschedule", "return"):
        with pytest.raises(InvalidTransition) as caught:
            order_transition(Order(state="completed", outcome="delivered"), action)
        assert caught.value.details["current_state"] == "completed (delivered)"


EXPECTED_STOP = {
    ("arrive", "pending"): ("arrived", ""),
    ("complete", "pending"): ("completed", "succeeded"),
    ("complete", "arrived"): ("completed", "succeeded"),
    ("fail", "pending"): ("completed", "failed"),
    ("fail", "arrived"): ("completed", "failed"),
    ("cancel", "pending"): ("cancelled", ""),
    ("cancel", "arrived"): ("cancelled", ""),
}
STOP_CASES = [(a, s) for a in STOP_TRANSITIONS for s in StopState.values]


@pytest.mark.parametrize(("action", "state"), STOP_CASES, ids=[f"{a}-from-{s}" for a, s in STOP_CASES])
def test_a_stop_transition_is_legal_exactly_when_the_lifecycle_allows_it(action, state):
    stop = Stop(state=state, outcome=StopOutcome.SUCCEEDED if state == "completed" else "")
    expected = EXPECTED_STOP.get((action, state))

    if expected is None:
        with pytest.raises(InvalidTransition):
            stop_transition(stop, action)
        assert stop.state == state
    else:
        stop_transition(stop, action)
        assert (stop.state, stop.outcome) == expected


EXPECTED_ROUTE = {
    ("publish", "draft"): "published",
    ("unpublish", "published"): "draft",
    ("start", "published"): "in_progress",
    ("complete", "in_progress"): "completed",
}
ROUTE_CASES = [(a, s) for a in ROUTE_TRANSITIONS for s in RouteStatus.values]


@pytest.mark.parametrize(("action", "status"), ROUTE_CASES, ids=[f"{a}-from-{s}" for a, s in ROUTE_CASES])
def test_a_route_transition_is_legal_exactly_when_the_lifecycle_allows_it(action, status):
    route = Route(status=status)
    expected = EXPECTED_ROUTE.get((action, status))

    if expected is None:
        with pytest.raises(InvalidTransition):
            route_transition(route, action)
        assert route.status == status
    else:
        route_transition(route, action)
        assert route.status == expected


class TestOverTheApi:
    """An illegal transition requested through the API is a 409 carrying the current state."""

    def test_cancelling_a_cancelled_order_is_a_409_with_its_state(self, as_dave, acme):
        from tests.factories import OrderFactory

        order = OrderFactory(org=acme, state=OrderState.CANCELLED)

        response = as_dave.post(f"/api/v1/orders/{order.pk}/cancel/", {}, format="json")

        assert response.status_code == 409
        assert response.json() == {
            "code": "invalid_transition",
            "message": "Cannot cancel an order that is cancelled.",
            "current_state": "cancelled",
            "attempted": "cancel",
        }

    def test_rescheduling_a_delivered_order_is_a_409(self, as_dave, acme):
        from tests.factories import OrderFactory

        order = OrderFactory(org=acme, state="completed", outcome="delivered")

        response = as_dave.post(f"/api/v1/orders/{order.pk}/reschedule/")

        assert response.status_code == 409
        assert response.json()["current_state"] == "completed (delivered)"
        order.refresh_from_db()
        assert order.state == "completed"

    def test_a_failed_order_can_be_rescheduled_for_another_attempt(self, as_dave, acme):
        from tests.factories import OrderFactory

        order = OrderFactory(org=acme, state="completed", outcome="failed", failure_reason="recipient_absent",
                             attempts=1)

        response = as_dave.post(f"/api/v1/orders/{order.pk}/reschedule/")

        assert response.status_code == 200
        assert response.json()["state"] == "created"
        assert response.json()["outcome"] == ""
        assert response.json()["failure_reason"] == ""
        assert response.json()["attempts"] == 1

    def test_a_failed_order_can_be_returned_to_the_shipper(self, as_dave, acme):
        from tests.factories import OrderFactory

        order = OrderFactory(org=acme, state="completed", outcome="failed", failure_reason="refused")

        response = as_dave.post(f"/api/v1/orders/{order.pk}/return/")

        assert response.status_code == 200
        assert (response.json()["state"], response.json()["outcome"]) == ("returned", "failed")
