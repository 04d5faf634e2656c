"""Notification fixtures: Erika's order on Bob's route, a frozen clock, fake transports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.services.routes import route_create
from apps.notifications.triggers import requested
from tests.factories import OrderFactory

# 10:00 in Berlin on the delivery day.
MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_requests():
    requested.reset()
    yield
    requested.reset()


@pytest.fixture
def clock():
    with time_machine.travel(MORNING, tick=False) as traveller:
        yield traveller


@pytest.fixture
def erika(clock, acme):
    return OrderFactory(org=acme, customer_name="Erika Mustermann", customer_phone="+4915100000001",
                        customer_email="erika@example.com", reference="A-1001",
                        window_start=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
                        window_end=datetime(2026, 11, 23, 14, 0, tzinfo=UTC))


@pytest.fixture
def route(erika, acme, acme_hub, bob, acme_van):
    actor = system_actor(acme)
    return route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date="2026-11-23", driver=bob.pk,
                                                   vehicle=acme_van.pk, orders=[erika.pk],
                                                   planned_start="2026-11-23T09:30:00+00:00"))


class FakeTwilio:
    """The SMS backend's one seam: records calls, answers as told."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict, tuple]] = []

    def __call__(self, url, form, auth):
        self.calls.append((url, form, auth))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer
