"""Liveness, readiness and metrics endpoints for the load balancer and Prometheus."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

from . import metrics


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Never touches a dependency, so a database outage
    does not make the orchestrator restart every healthy process at once."""
    return JsonResponse({"status": "ok"})


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def _check_redis() -> dict:
    if not settings.REDIS_URL:
        return {"skipped": "in-memory channel layer"}
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def _check_job_queue() -> dict:
    from django.db.models import Min
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(status="READY")
    oldest = waiting.aggregate(oldest=Min("enqueued_at"))["oldest"]
    return {"waiting": waiting.count(), "oldest_age_s": round((timezone.now() - oldest).total_seconds(), 1) if oldest else 0}


_CHECKS: dict[str, Callable[[], dict]] = {
    "database": _check_database,
    "redis": _check_redis,
    "job_queue": _check_job_queue,
}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: this process can serve traffic (database, Redis and the job queue answer).

    A 503 takes the process out of the load balancer's rotation until its dependencies
    answer again; the body says which one failed.
    """
    checks: dict[str, dict] = {}
    ready = True
    for name, check in _CHECKS.items():
        started = time.perf_counter()
        try:
            result = {"ok": True, **check()}
        except Exception as exc:  # any failure means not ready; the reason goes in the body
            ready = False
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        checks[name] = result
    if not ready:
        # The database connection may be the broken one; do not hand it to the next request.
        connection.close_if_unusable_or_obsolete()
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition. With ``METRICS_TOKEN`` set, scrapers must send it as a bearer token."""
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            return JsonResponse({"code": "not_authenticated", "message": "A valid metrics token is required."}, status=401)
    elif settings.PRODUCTION:
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Resolved per request: with hashed static names the URL exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("common/favicon.svg"))
