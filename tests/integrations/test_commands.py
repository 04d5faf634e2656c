"""The sweeper and reconciliation commands an operator runs beside the workers."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.http.request import HttpHeaders
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from apps.integrations.models import InboundMessage
from apps.integrations.services.inbound import inbound_receive
from tests.integrations.conftest import realworld_bytes, run_worker, shopify_headers

pytestmark = pytest.mark.django_db


def test_the_sweep_requeues_a_message_whose_worker_died(shopify):
    body = realworld_bytes("shopify/docs_sample_orders_create.json")
    message = inbound_receive(connection=shopify, headers=HttpHeaders(shopify_headers(body)), body=body).message
    DBTaskResult.objects.all().delete()  # the task row a killed worker left RUNNING, gone from the queue
    InboundMessage.objects.filter(pk=message.pk).update(received_at=timezone.now() - timedelta(minutes=11))
    out = StringIO()

    call_command("integrations_sweep", stdout=out)
    run_worker()

    assert "re-queued 1 inbound messages" in out.getvalue()
    assert InboundMessage.objects.get().status == "processed"


def test_reconcile_reports_each_connection_and_survives_a_failing_one(woo):
    woo.api = {"key": "ck", "secret": "cs"}
    woo.store = "https://127.0.0.1:9"  # refused: a loopback address, not allow-listed
    woo.save()
    err = StringIO()

    call_command("integrations_reconcile", stderr=err)

    assert "woocommerce:example.com" in err.getvalue()
    assert "could not be reached" in err.getvalue()
