"""Per-client-address limits for the public tracking surface (page, its API, its socket).

A tracking link carries 192 random bits, so guessing is hopeless; the limit is about
cost (each page builds an ETA) and about noise from scanners. Fixed one-minute windows
in Django's cache: the process's memory by default, so each process counts its own
(set CACHES to Redis to share the count across processes).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from apps.common.ratelimit import window_hit


def client_address(request: HttpRequest) -> str:
    # Behind the load balancer (docs/deploy.md) the last hop is the proxy; the
    # deployment sets SECURE_PROXY_SSL_HEADER and trusts X-Forwarded-For's first entry.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and settings.TRACKING_TRUST_FORWARDED_FOR:
        return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def allow(address: str, *, per_minute: int | None = None) -> bool:
    """Count one request from ``address``; False once it is over the limit this minute."""
    limit = per_minute or settings.TRACKING_RATE_PER_MIN
    return window_hit(f"track-rate:{address}:{int(time.time() // 60)}", window_s=60) <= limit


class TrackingRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        return allow(client_address(request))

    def wait(self) -> float:
        return 60 - time.time() % 60
