"""Prometheus metrics: what an operator watches to know the fleet is being served.

Counters and histograms are updated where things happen; gauges that describe stored
state (the job queue) are read from the database at scrape time by a collector, so they
are right even when no process has touched them since start.

Several processes on one host (Daphne and workers): set ``PROMETHEUS_MULTIPROC_DIR`` to
a directory they share and each process's samples are merged at scrape time
(prometheus_client's multiprocess mode). Without it each process reports its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

http_request_seconds = Histogram(
    "lastmile_http_request_duration_seconds", "HTTP request latency by endpoint.",
    ["method", "route", "status"], buckets=_LATENCY_BUCKETS,
)
websocket_connections = Gauge(
    "lastmile_websocket_connections", "Open WebSocket connections by endpoint.", ["endpoint"],
    multiprocess_mode="livesum",
)
location_pings = Counter("lastmile_location_pings_total", "Location pings received, by outcome.", ["status"])
fanout_seconds = Histogram(
    "lastmile_fanout_latency_seconds", "From a ping's arrival to its position leaving for consoles.",
    buckets=_LATENCY_BUCKETS,
)
webhook_deliveries = Counter(
    "lastmile_webhook_deliveries_total", "Outbound webhook delivery attempts, by result.", ["result"],
)

# channels_redis drops a group message for a channel already holding ``capacity``
# messages (a socket whose reader stalled: a frozen tab, a dead client not yet noticed);
# apps/realtime/capacity.py counts each drop here. The client resyncs from the log.
channel_over_capacity = Counter(
    "lastmile_channel_over_capacity_total", "Live messages dropped for a full consumer channel, by group kind.",
    ["group"],
)


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    http_request_seconds.labels(method=method, route=route, status=f"{status // 100}xx").observe(seconds)


class StoredStateCollector(Collector):
    """Job queue depth and age, and outbox lag, read from the database at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count, Min
        from django.utils import timezone
        from django_tasks_db.models import DBTaskResult

        depth = GaugeMetricFamily("lastmile_job_queue_depth", "Jobs waiting to run, by queue.", labels=["queue"])
        age = GaugeMetricFamily(
            "lastmile_job_queue_oldest_age_seconds", "Age of the oldest job waiting to run, by queue.", labels=["queue"],
        )
        now = timezone.now()
        rows = (
            DBTaskResult.objects.filter(status="READY")
            .values("queue_name").annotate(n=Count("id"), oldest=Min("enqueued_at"))
        )
        for row in rows:
            depth.add_metric([row["queue_name"]], row["n"])
            age.add_metric([row["queue_name"]], (now - row["oldest"]).total_seconds())
        yield depth
        yield age
        yield from _outbox_lag(now)


def _outbox_lag(now) -> Iterator[GaugeMetricFamily]:
    """Age of the oldest undelivered outbound webhook (0 when the outbox is empty)."""
    try:
        from apps.integrations.selectors import outbox_oldest_pending  # type: ignore[import-not-found]
    except ImportError:
        return
    lag = GaugeMetricFamily("lastmile_outbox_lag_seconds", "Age of the oldest webhook delivery not yet made.")
    oldest = outbox_oldest_pending()
    lag.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
    yield lag


def render() -> bytes:
    """The exposition text for this process, or for all processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(StoredStateCollector())
        return generate_latest(registry)
    return generate_latest(REGISTRY) + generate_latest(_stored_state_registry)


_stored_state_registry = CollectorRegistry()
_stored_state_registry.register(StoredStateCollector())
