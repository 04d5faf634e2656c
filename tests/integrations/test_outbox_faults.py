"""Fault test with real processes: a db_worker killed (SIGKILL) while the partner holds its
request loses nothing, and the only duplicate carries the same webhook-id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn
from apps.dispatch.services.orders import order_create
from apps.integrations.models import WebhookDelivery
from apps.integrations.services.outbound import CLAIM_TIMEOUT, endpoint_create, webhooks_sweep
from tests.factories import order_payload
from tests.integrations.conftest import run_worker
from tests.realtime.servers import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)


class Partner(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    first_seen = threading.Event()
    hang = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Partner.received.append((dict(self.headers), body))
        Partner.first_seen.set()
        if Partner.hang:
            time.sleep(20)  # the worker is killed while it waits for this answer
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def partner_url():
    for port in range(8220, 8250):
        try:
            httpd = ThreadingHTTPServer(("127.0.0.1", port), Partner)
            break
        except OSError:
            continue
    else:
        pytest.fail("no free port in 8220-8249")
    Partner.received, Partner.hang = [], True
    Partner.first_seen.clear()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/hooks"
    httpd.shutdown()


def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_only_the_same_id(acme, partner_url, settings):
    endpoint = endpoint_create(org=acme, url=partner_url, event_types=["order.*"])
    order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload()))
    delivery = WebhookDelivery.objects.get()
    env = {**os.environ, "DATABASE_URL": database_url(), "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
           "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    env.pop("LASTMILE_INPROCESS_WORKER", None)
    worker = subprocess.Popen([sys.executable, "manage.py", "db_worker", "--queue-name", "webhooks",
                               "--interval", "0.1", "--no-startup-delay"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert Partner.first_seen.wait(30), "the worker never sent the webhook"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.claimed_at is not None  # sent, never recorded

    # Another worker, once the claim has expired, sends it again.
    Partner.hang = False
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert webhooks_sweep() == 0  # too early: the first worker might still be sending
    later = timezone.now() + CLAIM_TIMEOUT + timedelta(seconds=1)
    assert webhooks_sweep(now=later) == 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_at=timezone.now() - CLAIM_TIMEOUT - timedelta(seconds=1))
    run_worker()

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    ids = [headers["webhook-id"] for headers, _ in Partner.received]
    assert ids == [delivery.webhook_id, delivery.webhook_id]
    for headers, body in Partner.received:
        assert Webhook(endpoint.secret).verify(body, {k.lower(): v for k, v in headers.items()})["type"] == "order.created"
