"""What an operator relies on: liveness, readiness, metrics, request ids, JSON logs, and
a clean 503 when the database is gone."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import OperationalError
from django.test import Client

from apps.common.observability import JsonFormatter, RequestIdFilter, incoming_request_id
from tests.common.tasks_for_tests import record_heartbeat
from tests.conftest import client_for


@pytest.mark.django_db
def test_liveness_answers_without_touching_dependencies(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # a dead Redis must not fail liveness
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_reports_each_dependency(client, acme):
    record_heartbeat.enqueue(acme.pk)
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["job_queue"]["waiting"] == 1
    assert body["checks"]["job_queue"]["oldest_age_s"] >= 0


@pytest.mark.django_db
def test_readiness_is_503_and_names_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_metrics_expose_request_latency_by_endpoint_and_queue_depth(client, acme, dave):
    record_heartbeat.enqueue(acme.pk)
    record_heartbeat.enqueue(acme.pk)
    client_for(dave).get("/api/v1/orders/")

    text = client.get("/metrics").content.decode()

    assert 'lastmile_http_request_duration_seconds_count{method="GET",route="v1:order-list",status="2xx"}' in text
    assert 'lastmile_job_queue_depth{queue="default"} 2.0' in text
    assert "lastmile_job_queue_oldest_age_seconds" in text
    assert "lastmile_websocket_connections" in text


@pytest.mark.django_db
def test_metrics_require_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


@pytest.mark.django_db
def test_metrics_are_closed_in_production_without_a_token(client, settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


@pytest.mark.django_db
def test_every_response_carries_a_request_id_and_a_sane_upstream_one_is_kept(client):
    fresh = client.get("/healthz")["X-Request-ID"]
    assert len(fresh) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c21-0001")["X-Request-ID"] == "lb-7f3a9c21-0001"
    # An id that could forge log lines or headers is replaced, not echoed.
    assert client.get("/healthz", HTTP_X_REQUEST_ID="x\r\nSet-Cookie: a=b")["X-Request-ID"] != "x\r\nSet-Cookie: a=b"
    assert incoming_request_id("short") != "short"


@pytest.mark.django_db
def test_log_lines_written_during_a_request_carry_its_id(client, caplog):
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="lastmile.request"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID="req-0123456789")
    assert response.status_code == 200
    access = [r for r in caplog.records if r.name == "lastmile.request"]
    assert access and access[0].request_id == "req-0123456789"
    assert access[0].status == 200


def test_the_json_formatter_writes_one_parseable_object_with_extra_fields():
    record = logging.makeLogRecord({"name": "lastmile.request", "levelname": "INFO", "levelno": 20,
                                    "msg": "GET %s", "args": ("/api/v1/orders/",), "status": 200})
    RequestIdFilter().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "GET /api/v1/orders/"
    assert entry["status"] == 200
    assert entry["level"] == "INFO"
    assert entry["request_id"] == "-"


@pytest.mark.django_db
def test_a_database_outage_in_an_api_view_is_a_503_json_error_with_retry_after(dave, monkeypatch):
    from apps.dispatch.api import orders

    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(orders.OrderViewSet, "get_queryset", unreachable)
    response = client_for(dave).get("/api/v1/orders/")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"


@pytest.mark.django_db
def test_a_database_outage_outside_drf_is_a_503_too(settings, monkeypatch):
    from django.contrib.sessions.backends import db as session_db

    def unreachable(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    # The session store is read by middleware, before any view runs.
    monkeypatch.setattr(session_db.SessionStore, "load", unreachable)
    browser = Client(raise_request_exception=False)
    browser.cookies[settings.SESSION_COOKIE_NAME] = "a" * 32
    response = browser.get("/console/")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


@pytest.mark.django_db
def test_metrics_count_pings_by_outcome_and_time_the_fan_out(acme, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from apps.common import metrics
    from apps.tracking import fanout
    from apps.tracking.services import location_receive
    from tests.factories import DriverFactory

    def value(metric, **labels):
        return metric.labels(**labels)._value.get()

    driver = DriverFactory(org=acme, on_duty=True)
    at = timezone.now() - timedelta(seconds=30)
    ping = {"lat": 52.52, "lng": 13.40, "accuracy_m": 5, "at": at.isoformat()}
    shown, duplicate, rejected = (value(metrics.location_pings, status=s) for s in ("shown", "duplicate", "rejected"))
    fanned_before = sum(b.get() for b in metrics.fanout_seconds._buckets)

    with django_capture_on_commit_callbacks(execute=True):  # positions leave after commit
        location_receive(org_id=acme.pk, driver_id=driver.pk, pings=[ping, ping, {"lat": 999}])
    fanout.flush_now()

    assert value(metrics.location_pings, status="shown") == shown + 1
    assert value(metrics.location_pings, status="duplicate") == duplicate + 1
    assert value(metrics.location_pings, status="rejected") == rejected + 1
    assert sum(b.get() for b in metrics.fanout_seconds._buckets) == fanned_before + 1


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_metrics_count_open_websockets_by_endpoint(acme):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from apps.common import metrics
    from apps.realtime.consumers import ConsoleConsumer
    from tests.factories import member

    gauge = metrics.websocket_connections.labels(endpoint="console")
    before = gauge._value.get()
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = await sync_to_async(member)(acme, "olga", "dispatcher")
    connected, _ = await communicator.connect()
    assert connected
    assert gauge._value.get() == before + 1
    await communicator.disconnect()
    assert gauge._value.get() == before
