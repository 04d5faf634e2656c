"""A worker process killed (SIGKILL) in the middle of a job: a webhook delivery, a
notification send, a re-optimization. Another worker runs the job again once the dead
one's lease lapses (apps/common/jobs.py), takes over the claim the dead run left on the
work, and the job's effect happens exactly once, within seconds rather than after the
work's own claim timeout (2 minutes for a webhook, 10 for a message, a minute past the
time limit for a plan)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn
from apps.dispatch.services.orders import order_create
from apps.integrations.models import DeliveryAttempt, WebhookDelivery
from apps.integrations.services.outbound import endpoint_create
from apps.notifications.models import Message, MessageStatus
from apps.notifications.tasks import notification_prepare
from tests.factories import OrderFactory, order_payload

from .workers import kill_the_one_running, wait_for, worker_env, workers

pytestmark = pytest.mark.django_db(transaction=True)


def _job(task_path: str) -> DBTaskResult:
    return DBTaskResult.objects.get(task_path=task_path)


def _ran_again_by_the_survivor(job: DBTaskResult, killed: str) -> None:
    job.refresh_from_db()
    assert job.status == "SUCCESSFUL"
    assert len(job.worker_ids) == 2 and job.worker_ids[0] == killed and job.worker_ids[1] != killed


# --- a webhook delivery ----------------------------------------------------------------


class Partner(BaseHTTPRequestHandler):
    """A partner that holds the first request until released, and answers the rest."""

    received: list[tuple[dict, bytes]] = []
    first = threading.Event()
    release = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Partner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        if len(Partner.received) == 1:
            Partner.first.set()
            Partner.release.wait(30)  # the worker is killed while it waits for this answer
        try:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass  # the killed worker's connection is gone

    def log_message(self, *args):
        pass


@pytest.fixture
def partner_url():
    Partner.received = []
    Partner.first, Partner.release = threading.Event(), threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Partner)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks"
    Partner.release.set()
    httpd.shutdown()


def test_a_worker_killed_mid_delivery_has_it_sent_again_by_the_next_with_the_same_webhook_id(acme, partner_url):
    endpoint = endpoint_create(org=acme, url=partner_url, event_types=["order.created"])
    order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload()))
    delivery = WebhookDelivery.objects.get()
    env = worker_env(WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32")

    job = _job("apps.integrations.tasks.deliver_webhook")

    with workers(env, queue="webhooks") as running:
        assert Partner.first.wait(30), "no worker sent the webhook"
        killed = kill_the_one_running(job.pk, running)
        delivery.refresh_from_db()
        assert delivery.status == "pending" and delivery.claimed_at is not None  # sent, never recorded
        wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded", 30,
                 "the delivery to be sent again and recorded")

    delivery.refresh_from_db()
    assert (delivery.attempts, DeliveryAttempt.objects.filter(delivery=delivery).count()) == (2, 1)
    # The partner saw the delivery twice, under one webhook-id, so it applies it once.
    assert [headers["webhook-id"] for headers, _ in Partner.received] == [delivery.webhook_id] * 2
    for headers, body in Partner.received:
        assert Webhook(endpoint.secret).verify(body, headers)["type"] == "order.created"
    _ran_again_by_the_survivor(job, killed)


# --- a notification ------------------------------------------------------------------------


def test_a_worker_killed_mid_send_has_the_message_sent_once_by_the_next(acme, tmp_path):
    """The mail server holds the first connection (tests/faults/held_mail.py) and the
    worker dies before the server took the message: it is sent once, by the next worker."""
    from apps.notifications.models import NotificationSettings

    NotificationSettings.objects.update_or_create(org=acme, defaults={"quiet_hours_start": None,
                                                                      "quiet_hours_end": None})
    order = OrderFactory(org=acme, customer_phone="", customer_email="erika@example.com")
    hold, outbox = tmp_path / "hold", tmp_path / "outbox.jsonl"
    hold.touch()
    env = worker_env(EMAIL_BACKEND="tests.faults.held_mail.HeldMailBackend", FAULTS_MAIL_HOLD=str(hold),
                     FAULTS_MAIL_OUTBOX=str(outbox))
    job = notification_prepare.enqueue(order.pk, "scheduled")

    with workers(env, queue="notifications") as running:
        wait_for((tmp_path / "hold.waiting").exists, 30, "a worker to reach the mail server")
        killed = kill_the_one_running(job.id, running)
        message = Message.objects.get(order=order)
        assert message.status == MessageStatus.SENDING and not outbox.exists()
        hold.unlink()
        wait_for(lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, 30,
                 "the message to be sent by the next worker")

    sent = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(m["to"], m["message"]) for m in sent] == [(["erika@example.com"], str(message.pk))]
    message.refresh_from_db()
    assert message.attempts == 2
    _ran_again_by_the_survivor(_job("apps.notifications.tasks.notification_prepare"), killed)


# --- a re-optimization -------------------------------------------------------------------


def _zone_where_it_is_mid_morning() -> str:
    """A fixed-offset zone where it is about 10:00 now, so the drivers' shifts have hours
    left whenever the test runs (the worker processes run on the real clock)."""
    from django.utils import timezone

    offset = (10 - timezone.now().hour + 12) % 24 - 12  # -12 … +11
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # the sign is POSIX's


@pytest.fixture
def on_the_road(acme):
    """Three vans with five stops each, published for today at a hub where it is
    mid-morning, each on its way; replans are applied automatically."""
    import random
    import zoneinfo
    from datetime import time

    from django.utils import timezone

    from apps.dispatch.inputs import RouteIn
    from apps.dispatch.services.routes import route_create, route_publish, route_start
    from apps.planning.models import PlanningPolicy
    from tests.factories import DriverFactory, HubFactory, VehicleFactory

    zone = _zone_where_it_is_mid_morning()
    acme.timezone = zone
    acme.save(update_fields=["timezone"])
    hub = HubFactory(org=acme, timezone=zone)
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(zone)).date()
    actor = system_actor(acme)
    rng = random.Random(7)
    routes = []
    for n, name in enumerate(("Bob Baker", "Dana Dorn", "Emil Ernst")):
        van = VehicleFactory(org=acme, home_hub=hub)
        driver = DriverFactory(org=acme, name=name, home_hub=hub, shift_start=time(6, 0), shift_end=time(23, 0),
                               current_vehicle=van)
        orders = [OrderFactory(org=acme, hub=hub, external_id=f"KILL-{n}-{i}", window_start=None, window_end=None,
                               lat=52.50 + rng.uniform(0, 0.06), lng=13.35 + rng.uniform(0, 0.1)) for i in range(5)]
        route = route_create(actor=actor, data=RouteIn(hub=hub.pk, date=today.isoformat(), name=name, driver=driver.pk,
                                                       vehicle=van.pk, orders=[o.pk for o in orders]))
        route_publish(actor=actor, route=route)
        routes.append(route_start(actor=actor, route=route))
    # A long time limit keeps the first worker solving until it is killed.
    PlanningPolicy.objects.create(org=acme, auto_apply=True, replan_time_limit_s=30, coalesce_s=0)
    return routes


def _breakdown(acme, broken):
    from apps.dispatch.models import StopState
    from apps.planning.inputs import ExceptionIn
    from apps.planning.replans import exception_report

    orphans = set(broken.stops.filter(state=StopState.PENDING).values_list("order_id", flat=True))
    assert orphans
    exc = exception_report(actor=system_actor(acme), data=ExceptionIn(kind="vehicle_breakdown", route=broken.pk))
    return exc.replan, orphans


def test_a_worker_killed_mid_search_has_the_replan_proposed_once_by_the_next(acme, on_the_road):
    """Without auto-apply the search runs its whole time limit for the dispatcher to
    review: the kill lands mid-search, and the next worker takes over the claim."""
    from apps.dispatch.models import StopState
    from apps.events.models import Event
    from apps.planning.models import PlanningPolicy, PlanRun, PlanStatus

    PlanningPolicy.objects.filter(org=acme).update(auto_apply=False)
    broken = on_the_road[0]
    replan, orphans = _breakdown(acme, broken)
    job = _job("apps.planning.tasks.run_plan")

    with workers(worker_env(), queue="optimize") as running:
        wait_for(lambda: PlanRun.objects.get(pk=replan.pk).stage == "solving", 30, "a worker to start solving")
        killed = kill_the_one_running(job.pk, running)
        replan.refresh_from_db()
        assert replan.status == PlanStatus.RUNNING
        # The second run need not search for as long: the point is that it runs, once.
        PlanRun.objects.filter(pk=replan.pk).update(time_limit_s=2.0)
        wait_for(lambda: PlanRun.objects.get(pk=replan.pk).status not in (PlanStatus.RUNNING, PlanStatus.QUEUED), 30,
                 "the replan to run again")

    replan.refresh_from_db()
    assert replan.status == PlanStatus.READY, replan.error
    assert replan.attempts == 2
    assert Event.objects.filter(type="replan.proposed", subject_id=str(replan.pk)).count() == 1
    assert not Event.objects.filter(type="replan.applied", subject_id=str(replan.pk)).exists()
    # Proposed, not applied: the broken van still holds its stops until the dispatcher decides.
    assert set(broken.stops.filter(state=StopState.PENDING).values_list("order_id", flat=True)) == orphans
    _ran_again_by_the_survivor(job, killed)


def test_a_worker_killed_while_improving_an_applied_replan_leaves_it_applied_once(acme, on_the_road):
    """With auto-apply the drivers have the inserted plan within milliseconds; the kill
    lands in the search that may improve on it. The next run finds the replan applied
    and applies nothing twice."""
    from apps.dispatch.models import Stop, StopState
    from apps.events.models import Event
    from apps.planning.models import PlanRun, PlanStatus

    broken = on_the_road[0]
    replan, orphans = _breakdown(acme, broken)
    job = _job("apps.planning.tasks.run_plan")

    with workers(worker_env(), queue="optimize") as running:
        wait_for(lambda: Event.objects.filter(type="replan.applied", subject_id=str(replan.pk)).exists(), 30,
                 "the first plan to be applied")
        killed = kill_the_one_running(job.pk, running)  # searching for an improvement (30 s limit)
        wait_for(lambda: _job("apps.planning.tasks.run_plan").status == "SUCCESSFUL", 30, "the job to run again")

    replan.refresh_from_db()
    assert replan.status == PlanStatus.PUBLISHED, replan.error
    assert Event.objects.filter(type="replan.applied", subject_id=str(replan.pk)).count() == 1
    assert not PlanRun.objects.filter(org=acme).exclude(pk=replan.pk).filter(status=PlanStatus.PUBLISHED).exists()
    # Each of the broken van's open orders is on exactly one other route, once.
    assert not broken.stops.filter(state=StopState.PENDING).exists()
    placed = list(Stop.objects.filter(order_id__in=orphans, state=StopState.PENDING).values_list("order_id", "route_id"))
    assert sorted(order for order, _ in placed) == sorted(orphans)
    assert broken.pk not in {route for _, route in placed}
    _ran_again_by_the_survivor(job, killed)
