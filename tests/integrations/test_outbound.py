"""Outbound webhooks: signed per Standard Webhooks, written to the outbox with the event,
delivered at least once in order, retried for more than a day, replayable."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.accounts.actor import system_actor
from apps.dispatch.services.orders import order_cancel, order_create
from apps.events.services import event_record
from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.integrations.outbound import signing
from apps.integrations.outbound.transport import Response, TransportError
from apps.integrations.services import outbound
from apps.integrations.services.outbound import (
    CLAIM_TIMEOUT,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    delivery_attempt,
    delivery_replay,
    endpoint_create,
    endpoint_rotate_secret,
    webhooks_sweep,
)
from tests.factories import order_payload
from tests.integrations.conftest import run_worker

pytestmark = pytest.mark.django_db


class FakePartner:
    """The partner's server at the transport seam: records requests, answers from a script."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []

    def post(self, url, *, body, headers, timeout):
        self.requests.append({"url": url, "body": body, "headers": dict(headers), "timeout": timeout})
        answer = self.answers.pop(0) if self.answers else Response(200)
        if isinstance(answer, BaseException):
            raise answer
        return answer


@pytest.fixture
def partner(monkeypatch):
    fake = FakePartner()
    monkeypatch.setattr(outbound, "default_transport", lambda: fake)
    return fake


@pytest.fixture
def endpoint(acme):
    return endpoint_create(org=acme, url="https://partner.example.com/hooks", event_types=["order.*", "stop.*"])


def _order(acme, external_id="SHOP-1"):
    from apps.dispatch.inputs import OrderIn

    return order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload(external_id=external_id))).order


# --- signing -------------------------------------------------------------------------------


def test_the_specifications_test_vector_reproduces():
    signature = signing.sign(secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
                             timestamp=1614265330, body=b'{"test": 2432232314}')

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_reference_library_verifies_what_we_send(acme, endpoint, partner):
    _order(acme)
    run_worker()

    sent = partner.requests[0]
    payload = Webhook(endpoint.secret).verify(sent["body"], sent["headers"])
    assert payload["type"] == "order.created"
    assert payload["data"]["external_id"] == "SHOP-1"
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(sent["body"].replace(b"SHOP-1", b"SHOP-2"), sent["headers"])


def test_during_a_rotation_both_secrets_verify(acme, endpoint, partner):
    old = endpoint.secret
    new = endpoint_rotate_secret(endpoint=endpoint).secret
    _order(acme)
    run_worker()

    sent = partner.requests[0]
    assert len(sent["headers"]["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(sent["body"], sent["headers"])
    assert Webhook(new).verify(sent["body"], sent["headers"])


def test_after_the_grace_period_only_the_new_secret_signs(acme, endpoint, partner):
    old = endpoint.secret
    new = endpoint_rotate_secret(endpoint=endpoint, grace=timedelta(seconds=-1)).secret
    _order(acme)
    run_worker()

    sent = partner.requests[0]
    assert Webhook(new).verify(sent["body"], sent["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(sent["body"], sent["headers"])


# --- the outbox ------------------------------------------------------------------------------


def test_an_event_writes_its_delivery_in_the_same_transaction(acme, endpoint):
    order = _order(acme)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.event.type, delivery.ordering_key) == (endpoint, "order.created", f"order:{order.pk}")
    assert delivery.webhook_id.startswith("msg_") and "." not in delivery.webhook_id


def test_a_rolled_back_change_leaves_no_delivery(acme, endpoint):
    with pytest.raises(RuntimeError), transaction.atomic():
        _order(acme)
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the business transaction fails after the event")

    assert WebhookDelivery.objects.count() == 0


def test_only_subscribed_types_and_the_own_organization_get_deliveries(acme, globex, endpoint):
    endpoint_create(org=acme, url="https://routes.example.com/", event_types=["route.published"])
    endpoint_create(org=globex, url="https://globex.example.com/", event_types=["*"])
    with transaction.atomic():
        event_record(org=acme, actor="system", type="hub.created", subject_type="hub", subject_id=1)
    _order(acme)

    assert list(WebhookDelivery.objects.values_list("endpoint__url", "event_type")) == [
        ("https://partner.example.com/hooks", "order.created")]


def test_statuses_are_mapped_to_the_partners_vocabulary(acme, partner):
    endpoint_create(org=acme, url="https://a.example.com/", event_types=["order.*"], taxonomy="aftership")
    endpoint_create(org=acme, url="https://e.example.com/", event_types=["order.*"], taxonomy="easypost",
                    status_mapping={"order.cancelled": "CXL"})
    order = _order(acme)
    order_cancel(actor=system_actor(acme), order=order, reason="customer")
    run_worker()

    statuses = {(r["url"], json.loads(r["body"])["type"]): json.loads(r["body"])["status"] for r in partner.requests}
    assert statuses == {
        ("https://a.example.com/", "order.created"): "InfoReceived",
        ("https://a.example.com/", "order.cancelled"): "Exception",
        ("https://e.example.com/", "order.created"): "pre_transit",
        ("https://e.example.com/", "order.cancelled"): "CXL",
    }


# --- delivery, retries, dead letters -------------------------------------------------------------


def test_a_2xx_delivers(acme, endpoint, partner):
    _order(acme)
    run_worker()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert delivery.attempt_log.get().status_code == 200
    assert partner.requests[0]["timeout"] == 10.0


def test_failures_retry_with_growing_waits_over_more_than_a_day_then_dead_letter(acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()
    partner = FakePartner(*[Response(500)] * MAX_ATTEMPTS)
    first = now = timezone.now()
    waits = []
    for _ in range(MAX_ATTEMPTS):
        assert delivery_attempt(delivery_id=delivery.pk, transport=partner, now=now).status in ("retry", "dead")
        delivery.refresh_from_db()
        if delivery.status == "dead":
            break
        waits.append((delivery.next_attempt_at - now).total_seconds())
        now = delivery.next_attempt_at

    assert delivery.status == "dead" and delivery.attempts == MAX_ATTEMPTS
    assert len(partner.requests) == MAX_ATTEMPTS
    assert all(base <= wait <= base * 1.25 for wait, base in zip(waits, RETRY_DELAYS, strict=True))
    assert now - first > timedelta(hours=24)
    assert {r["headers"]["webhook-id"] for r in partner.requests} == {delivery.webhook_id}
    assert len({r["headers"]["webhook-timestamp"] for r in partner.requests}) == MAX_ATTEMPTS


def test_nothing_is_sent_before_its_time(acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()
    delivery_attempt(delivery_id=delivery.pk, transport=FakePartner(Response(503)), now=now)
    delivery.refresh_from_db()
    early = FakePartner()

    just_before = delivery.next_attempt_at - timedelta(seconds=1)
    assert delivery_attempt(delivery_id=delivery.pk, transport=early, now=just_before).status == "skipped"
    assert early.requests == []


def test_retry_after_is_honoured(acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()

    delivery_attempt(delivery_id=delivery.pk, transport=FakePartner(Response(429, {"retry-after": "3600"})), now=now)

    delivery.refresh_from_db()
    assert delivery.next_attempt_at - now == timedelta(seconds=3600)


def test_a_redirect_is_a_failure_and_is_not_followed(acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()
    partner = FakePartner(Response(302, {"location": "http://169.254.169.254/"}))

    assert delivery_attempt(delivery_id=delivery.pk, transport=partner).status == "retry"
    assert len(partner.requests) == 1
    delivery.refresh_from_db()
    assert "redirects are not followed" in delivery.last_error


def test_410_disables_the_endpoint_until_it_is_enabled_again(acme, endpoint, partner):
    partner.answers.append(Response(410))
    _order(acme, "A")
    run_worker()
    endpoint.refresh_from_db()
    assert endpoint.active is False and "410" in endpoint.disabled_reason
    _order(acme, "B")  # a gone endpoint gets nothing new until someone switches it back on
    assert WebhookDelivery.objects.filter(payload__data__external_id="B").count() == 0

    outbound.endpoint_enable(endpoint=endpoint)
    _order(acme, "C")
    run_worker()
    assert WebhookDelivery.objects.get(payload__data__external_id="C").status == "succeeded"


def test_a_later_status_of_an_order_waits_for_the_earlier_one(acme, endpoint, partner):
    partner.answers.append(Response(500))
    order = _order(acme)
    order_cancel(actor=system_actor(acme), order=order, reason="x")
    run_worker()

    assert [json.loads(r["body"])["type"] for r in partner.requests] == ["order.created"]
    created = WebhookDelivery.objects.get(event_type="order.created")
    later = timezone.now() + timedelta(seconds=10)
    delivery_attempt(delivery_id=created.pk, transport=partner, now=later)
    run_worker()

    assert [json.loads(r["body"])["type"] for r in partner.requests] == ["order.created", "order.created", "order.cancelled"]


def test_other_orders_do_not_wait_for_a_failing_one(acme, endpoint, partner):
    partner.answers.append(Response(500))
    _order(acme, "A")
    _order(acme, "B")
    run_worker()

    assert WebhookDelivery.objects.get(payload__data__external_id="B").status == "succeeded"


# --- faults: nothing lost, duplicates only with the same webhook-id ---------------------------------


def test_a_database_error_after_the_send_redelivers_with_the_same_id(acme, endpoint, monkeypatch):
    _order(acme)
    delivery = WebhookDelivery.objects.get()
    partner = FakePartner(Response(200), Response(200))

    def broken(*args, **kwargs):
        from django.db import OperationalError

        raise OperationalError("the database went away after the partner answered")

    monkeypatch.setattr(outbound, "_record", broken)
    with pytest.raises(Exception, match="went away"):
        delivery_attempt(delivery_id=delivery.pk, transport=partner)
    monkeypatch.undo()

    assert webhooks_sweep() == 0  # the claim is fresh: maybe it is still being sent
    later = timezone.now() + CLAIM_TIMEOUT + timedelta(seconds=1)
    assert webhooks_sweep(now=later) == 1
    assert delivery_attempt(delivery_id=delivery.pk, transport=partner, now=later).status == "sent"

    ids = [r["headers"]["webhook-id"] for r in partner.requests]
    assert ids == [delivery.webhook_id, delivery.webhook_id]
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


def test_a_worker_killed_mid_delivery_loses_nothing(acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()
    killed = FakePartner(KeyboardInterrupt())  # stands in for SIGKILL while waiting for the partner

    with pytest.raises(KeyboardInterrupt):
        delivery_attempt(delivery_id=delivery.pk, transport=killed)
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.claimed_at is not None

    later = timezone.now() + CLAIM_TIMEOUT + timedelta(seconds=1)
    survivor = FakePartner()
    assert delivery_attempt(delivery_id=delivery.pk, transport=survivor, now=later).status == "sent"
    assert [r["headers"]["webhook-id"] for r in killed.requests + survivor.requests] == [delivery.webhook_id] * 2


def test_two_workers_never_send_the_same_delivery_at_once(acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()
    outbound._claim(delivery.pk, now)  # the first worker holds it

    second = FakePartner()
    assert delivery_attempt(delivery_id=delivery.pk, transport=second, now=now).status == "skipped"
    assert second.requests == []


def test_an_unreachable_partner_is_retried(acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()

    unreachable = FakePartner(TransportError("timed out after 10 s"))
    assert delivery_attempt(delivery_id=delivery.pk, transport=unreachable).status == "retry"
    delivery.refresh_from_db()
    assert delivery.last_error == "timed out after 10 s"


# --- replay -------------------------------------------------------------------------------------


def test_a_dead_letter_is_replayed_with_the_same_id(acme, endpoint, partner):
    _order(acme)
    WebhookDelivery.objects.update(status="dead", attempts=MAX_ATTEMPTS)
    delivery = WebhookDelivery.objects.get()

    assert delivery_replay(deliveries=[delivery]) == 1
    run_worker()

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert partner.requests[0]["headers"]["webhook-id"] == delivery.webhook_id


def test_a_pending_delivery_is_not_replayed(acme, endpoint):
    _order(acme)
    from apps.common.exceptions import Conflict

    with pytest.raises(Conflict):
        delivery_replay(deliveries=list(WebhookDelivery.objects.all()))


# --- API -----------------------------------------------------------------------------------------


def test_alice_subscribes_an_endpoint_and_gets_its_secret_once(as_alice):
    response = as_alice.post("/api/v1/webhooks/endpoints/", {
        "url": "https://partner.example.com/x", "event_types": ["order.*"], "taxonomy": "easypost"}, format="json")

    assert response.status_code == 201
    assert response.json()["secret"].startswith("whsec_")
    assert "secret" not in as_alice.get(f"/api/v1/webhooks/endpoints/{response.json()['id']}/").json()


def test_unknown_event_types_are_refused(as_alice):
    response = as_alice.post("/api/v1/webhooks/endpoints/", {
        "url": "https://partner.example.com/x", "event_types": ["order.teleported"]}, format="json")

    assert response.status_code == 400
    assert "order.teleported" in response.json()["fields"]["event_types"][0]


def test_dave_reads_the_delivery_log_but_cannot_add_endpoints(as_dave, acme, endpoint, partner):
    _order(acme)
    run_worker()
    delivery = WebhookDelivery.objects.get()

    log = as_dave.get("/api/v1/webhooks/deliveries/", {"endpoint": endpoint.pk}).json()["results"]
    attempts = as_dave.get(f"/api/v1/webhooks/deliveries/{delivery.pk}/attempts/").json()

    assert [d["webhook_id"] for d in log] == [delivery.webhook_id]
    assert attempts[0]["status_code"] == 200 and "webhook-signature" not in attempts[0]["request_headers"]
    assert as_dave.post("/api/v1/webhooks/endpoints/", {"url": "https://x.example.com/", "event_types": ["*"]},
                        format="json").status_code == 403


def test_alice_replays_every_dead_letter_at_once(as_alice, acme, endpoint, partner):
    _order(acme, "A")
    _order(acme, "B")
    WebhookDelivery.objects.update(status="dead")

    response = as_alice.post("/api/v1/webhooks/deliveries/replay/", {"status": "dead"}, format="json")

    assert response.json() == {"replayed": 2}
    run_worker()
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 2


def test_carol_sees_no_acme_endpoint_or_delivery(as_carol, acme, endpoint):
    _order(acme)
    delivery = WebhookDelivery.objects.get()

    assert as_carol.get("/api/v1/webhooks/endpoints/").json()["results"] == []
    assert as_carol.get("/api/v1/webhooks/deliveries/").json()["results"] == []
    assert as_carol.get(f"/api/v1/webhooks/deliveries/{delivery.pk}/attempts/").status_code == 404
    # A dispatcher may not replay at all (403), whoever's delivery it is.
    assert as_carol.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/replay/").status_code == 403
    assert WebhookDelivery.objects.get().status == "pending"


def test_a_globex_admin_cannot_replay_acmes_delivery(acme, globex, endpoint):
    from tests.conftest import client_for
    from tests.factories import member

    _order(acme)
    WebhookDelivery.objects.update(status="dead")
    delivery = WebhookDelivery.objects.get()
    gina = client_for(member(globex, "gina", "admin"))

    assert gina.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/replay/").status_code == 404
    assert gina.post("/api/v1/webhooks/deliveries/replay/", {"ids": [delivery.pk]}, format="json").json() == {"replayed": 0}
    assert gina.post(f"/api/v1/webhooks/endpoints/{endpoint.pk}/rotate-secret/").status_code == 404
    assert WebhookDelivery.objects.get().status == "dead"
    assert WebhookEndpoint.objects.get().secret == endpoint.secret


# --- what the operator sees ----------------------------------------------------------------


def test_metrics_show_the_outbox_lag_and_each_delivery_result(acme, endpoint, partner, client):
    from apps.common import metrics

    def sent_count(result):
        return metrics.webhook_deliveries.labels(result=result)._value.get()

    _order(acme)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(minutes=20))
    lag = [line for line in client.get("/metrics").content.decode().splitlines()
           if line.startswith("lastmile_outbox_lag_seconds ")]
    assert lag and 1190 < float(lag[0].split()[1]) < 1300

    partner.answers = [Response(503)]
    retries_before, sent_before = sent_count("retry"), sent_count("sent")
    delivery_attempt(delivery_id=delivery.pk)
    assert sent_count("retry") == retries_before + 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # the retry is due
    delivery_attempt(delivery_id=delivery.pk)
    assert sent_count("sent") == sent_before + 1
    lag = [line for line in client.get("/metrics").content.decode().splitlines()
           if line.startswith("lastmile_outbox_lag_seconds ")]
    assert float(lag[0].split()[1]) == 0.0
