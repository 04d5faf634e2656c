"""A partner's webhook endpoint is down for hours while orders change: every delivery is
retried with growing waits under its one ``webhook-id``, nothing for an order overtakes an
earlier status of the same order, and once the endpoint is back the queue drains in order,
each status arriving exactly once.

The hours pass on a moved clock: the jobs run through the real queue (retries are jobs
with a ``run_after``), and the clock jumps to the next job that is due, as an idle worker
would wait for it. tests/integrations/test_outbound.py covers the pieces one delivery at a
time (the schedule, one held-back status, ``Retry-After``); this is the whole outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import time_machine
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn
from apps.dispatch.models import Order
from apps.dispatch.services.orders import order_cancel, order_create
from apps.integrations.models import WebhookDelivery
from apps.integrations.outbound.transport import Response, TransportError
from apps.integrations.services import outbound
from apps.integrations.services.outbound import MAX_ATTEMPTS, endpoint_create
from tests.factories import order_payload
from tests.integrations.conftest import run_worker

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
OUTAGE = timedelta(hours=6)


class DownPartner:
    """The partner's server: down (``how``) until ``back_at``, then answering 200. It checks
    each request's signature with the reference library at the moment it arrives, and
    keeps only the first 2xx per webhook-id (what a partner's deduplication does)."""

    def __init__(self, secret: str, *, how: str, back_at: datetime) -> None:
        self.verifier, self.how, self.back_at = Webhook(secret), how, back_at
        self.requests: list[dict] = []
        self.applied: list[tuple[str, str]] = []  # (order, event type) in the order the partner applied them

    def post(self, url, *, body, headers, timeout):
        now = timezone.now()
        message = self.verifier.verify(body, headers)  # raises on a bad signature or a stale timestamp
        self.requests.append({"at": now, "id": headers["webhook-id"], "type": message["type"],
                              "order": message["data"]["external_id"]})
        if now < self.back_at:
            if self.how == "refused":
                raise TransportError("connection refused")
            return Response(503)
        if headers["webhook-id"] not in {r["id"] for r in self.requests[:-1] if r.get("ok")}:
            self.applied.append((message["data"]["external_id"], message["type"]))
        self.requests[-1]["ok"] = True
        return Response(200)


def _run_until_the_queue_is_empty(traveller, *, limit: timedelta) -> None:
    """Run what is due; jump the clock to the next job that waits for its time; repeat."""
    while True:
        run_worker()
        due = (DBTaskResult.objects.filter(status="READY").order_by("run_after")
               .values_list("run_after", flat=True).first())
        if due is None:
            return
        assert due - START < limit, f"still retrying {due - START} after the outage began"
        traveller.move_to(max(due, timezone.now()))


@pytest.mark.parametrize("how", ["503", "refused"])
def test_a_partner_down_for_hours_gets_every_status_later_in_order_once_each(acme, monkeypatch, how):
    endpoint = endpoint_create(org=acme, url="https://partner.example.com/hooks", event_types=["order.*"])
    partner = DownPartner(endpoint.secret, how=how, back_at=START + OUTAGE)
    monkeypatch.setattr(outbound, "default_transport", lambda: partner)
    actor = system_actor(acme)

    with time_machine.travel(START, tick=False) as traveller:
        # Orders arrive and change during the first hour of the outage.
        for n, ref in enumerate(["A", "B", "C"]):
            traveller.move_to(START + timedelta(minutes=10 * n))
            order_create(actor=actor, data=OrderIn.model_validate(order_payload(external_id=ref)))
            run_worker()
        for ref in ["A", "C"]:
            traveller.move_to(timezone.now() + timedelta(minutes=15))
            order_cancel(actor=actor, order=Order.objects.get(org=acme, external_id=ref), reason="customer called")
            run_worker()

        _run_until_the_queue_is_empty(traveller, limit=timedelta(hours=12))

    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert [(d.payload["data"]["external_id"], d.event_type) for d in deliveries] == [
        ("A", "order.created"), ("B", "order.created"), ("C", "order.created"),
        ("A", "order.cancelled"), ("C", "order.cancelled")]
    assert all(d.status == "succeeded" for d in deliveries)

    # Each status arrived once, after the outage, in its order's sequence.
    accepted = [r["id"] for r in partner.requests if r.get("ok")]
    assert sorted(accepted) == sorted(d.webhook_id for d in deliveries)
    assert sorted(partner.applied) == sorted((d.payload["data"]["external_id"], d.event_type) for d in deliveries)
    for ref in ["A", "C"]:
        assert [t for o, t in partner.applied if o == ref] == ["order.created", "order.cancelled"]
    assert all(r["at"] >= START + OUTAGE for r in partner.requests if r.get("ok"))
    # Nothing of an order was sent while an earlier status of it was still undelivered.
    for ref in ["A", "C"]:
        sent = [r["type"] for r in partner.requests if r["order"] == ref]
        assert sent.index("order.cancelled") > max(i for i, t in enumerate(sent) if t == "order.created")

    for delivery in deliveries[:3]:  # the heads of each order's line: retried all through the outage
        tries = [r for r in partner.requests if r["id"] == delivery.webhook_id]
        assert len(tries) == delivery.attempts < MAX_ATTEMPTS
        assert len(tries) >= 5
        waits = [(b["at"] - a["at"]).total_seconds() for a, b in pairwise(tries)]
        assert waits == sorted(waits) and waits[-1] >= 7200  # backing off: hours apart by the end
    for delivery in deliveries[3:]:  # held back behind the head, then sent once, at the first try
        assert [r["id"] for r in partner.requests if r["type"] == delivery.event_type
                and r["order"] == delivery.payload["data"]["external_id"]] == [delivery.webhook_id]
    # One webhook-id per delivery, on every retry: no request carried an id of its own.
    assert {r["id"] for r in partner.requests} == {d.webhook_id for d in deliveries}
