"""The legal lifecycle transitions, as data.

State and outcome are kept apart (as Google Fleet Engine and Onfleet do): an order
reaches ``completed`` and *then* says whether it was delivered or failed, so
"is it finished?" and "did it succeed?" are separate questions with separate
answers. Services call ``order_transition``/``stop_transition``; nothing else
assigns ``state``.
"""

from __future__ import annotations

from apps.common.exceptions import InvalidTransition

from .models import Order, OrderOutcome, OrderState, RouteStatus, Stop, StopOutcome, StopState

S = OrderState

# action -> (states it is legal from, state it leads to)
ORDER_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "plan": (frozenset({S.CREATED}), S.PLANNED),
    # A dispatcher may take an order off a route at any point before it is attempted.
    "unplan": (frozenset({S.PLANNED, S.DISPATCHED, S.OUT_FOR_DELIVERY}), S.CREATED),
    "dispatch": (frozenset({S.PLANNED}), S.DISPATCHED),
    "recall": (frozenset({S.DISPATCHED}), S.PLANNED),
    "start": (frozenset({S.DISPATCHED}), S.OUT_FOR_DELIVERY),
    "deliver": (frozenset({S.OUT_FOR_DELIVERY}), S.COMPLETED),
    "fail": (frozenset({S.OUT_FOR_DELIVERY}), S.COMPLETED),
    "cancel": (frozenset({S.CREATED, S.PLANNED, S.DISPATCHED, S.OUT_FOR_DELIVERY}), S.CANCELLED),
    # Only a failed delivery can be tried again or sent back to the shipper.
    "reschedule": (frozenset({S.COMPLETED}), S.CREATED),
    "return": (frozenset({S.COMPLETED}), S.RETURNED),
}
ORDER_NEEDS_FAILED_OUTCOME = frozenset({"reschedule", "return"})
ORDER_EDITABLE_STATES = frozenset({S.CREATED, S.PLANNED, S.DISPATCHED, S.OUT_FOR_DELIVERY})

STOP_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "arrive": (frozenset({StopState.PENDING}), StopState.ARRIVED),
    # Drivers forget to tap "arrived"; completing straight from pending is allowed.
    "complete": (frozenset({StopState.PENDING, StopState.ARRIVED}), StopState.COMPLETED),
    "fail": (frozenset({StopState.PENDING, StopState.ARRIVED}), StopState.COMPLETED),
    "cancel": (frozenset({StopState.PENDING, StopState.ARRIVED}), StopState.CANCELLED),
}

R = RouteStatus
ROUTE_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "publish": (frozenset({R.DRAFT}), R.PUBLISHED),
    "unpublish": (frozenset({R.PUBLISHED}), R.DRAFT),
    "start": (frozenset({R.PUBLISHED}), R.IN_PROGRESS),
    "complete": (frozenset({R.IN_PROGRESS}), R.COMPLETED),
}
ROUTE_EDITABLE_STATUSES = frozenset({R.DRAFT, R.PUBLISHED, R.IN_PROGRESS})


def order_transition(order: Order, action: str) -> str:
    """Move ``order`` along ``action`` in memory and return the previous state. Caller saves."""
    sources, target = ORDER_TRANSITIONS[action]
    legal = order.state in sources
    if legal and action in ORDER_NEEDS_FAILED_OUTCOME:
        legal = order.outcome == OrderOutcome.FAILED
    if not legal:
        current = order.state if not order.outcome else f"{order.state} ({order.outcome})"
        raise InvalidTransition(subject="order", current_state=current, attempted=action)
    previous = order.state
    order.state = target
    if target != S.COMPLETED and target != S.RETURNED:
        order.outcome = OrderOutcome.NONE
    return previous


def stop_transition(stop: Stop, action: str) -> str:
    sources, target = STOP_TRANSITIONS[action]
    if stop.state not in sources:
        current = stop.state if not stop.outcome else f"{stop.state} ({stop.outcome})"
        raise InvalidTransition(subject="stop", current_state=current, attempted=action)
    previous = stop.state
    stop.state = target
    stop.outcome = {"complete": StopOutcome.SUCCEEDED, "fail": StopOutcome.FAILED}.get(action, StopOutcome.NONE)
    return previous


def route_transition(route, action: str) -> str:
    sources, target = ROUTE_TRANSITIONS[action]
    if route.status not in sources:
        raise InvalidTransition(subject="route", current_state=route.status, attempted=action)
    previous = route.status
    route.status = target
    return previous
