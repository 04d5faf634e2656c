"""The driver app's pages: the shell (/driver/), its web app manifest and its service
worker. The app's data comes from the REST API and the driver socket; the shell only
checks who is signed in and passes the few facts the app needs before its first request.

The service worker is served from /driver/ (not /static/) because a worker controls
only the pages under its own path; it is rendered with the static URLs of the app
shell, so production's hashed file names are what it caches, and its version changes
whenever one of them does.
"""

from __future__ import annotations

import hashlib
import json
import zoneinfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts.models import Role
from apps.dispatch.models import FailureReason

# The app shell: what the service worker stores so /driver/ opens with no network.
SHELL_STATIC = [
    "common/base.css", "common/api.js", "common/live.js", "common/format.js", "common/favicon.svg",
    "driver/driver.css", "driver/driver.js", "driver/db.js", "driver/outbox.js", "driver/capture.js",
    "driver/routes.js", "driver/route-map.js", "driver/geo.js", "driver/icons/icon-192.png",
    "driver/icons/icon-512.png",
    "vendor/preact-htm/standalone.module.js", "vendor/leaflet/leaflet-src.esm.js", "vendor/leaflet/leaflet.css",
    "vendor/signature_pad/signature_pad.js",
]


def _org_today(tz_name: str) -> str:
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    return timezone.now().astimezone(tz).date().isoformat()


@never_cache
@login_required
def driver_app(request: HttpRequest) -> HttpResponse:
    membership = getattr(request.user, "membership", None)
    driver = getattr(request.user, "driver_profile", None)
    if membership is None or membership.role != Role.DRIVER or driver is None:
        return render(request, "driver/forbidden.html", {"membership": membership}, status=403)
    return render(request, "driver/driver.html", {
        "org": membership.org,
        "driver": driver,
        "page_config": {
            "driverId": driver.pk,
            "driverName": driver.name,
            "username": request.user.get_username(),
            "onDuty": driver.on_duty,
            # A copy of this page served offline by the service worker may be older than
            # what the app remembers (it compares this with its own record of the shift).
            "renderedAt": timezone.now().isoformat(),
            "orgName": membership.org.name,
            "timezone": membership.org.timezone,
            "today": _org_today(membership.org.timezone),
            "tileUrl": settings.MAP_TILE_URL,
            "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
            "failureReasons": [{"code": value, "label": label} for value, label in FailureReason.choices],
            "maxUploadBytes": settings.POD_MAX_UPLOAD_BYTES,
        },
    })


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    body = {
        "name": "Lastmile Driver",
        "short_name": "Driver",
        "description": "Your route, stop by stop, with proof of delivery. Works offline.",
        "start_url": "/driver/",
        "scope": "/driver/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f4f6f9",
        "theme_color": "#2457d6",
        "icons": [
            {"src": static("driver/icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": static("driver/icons/icon-512.png"), "sizes": "512x512", "type": "image/png",
             "purpose": "any maskable"},
        ],
    }
    response = JsonResponse(body, content_type="application/manifest+json")
    response["Cache-Control"] = "no-cache"
    return response


def _worker_source() -> str:
    path = settings.BASE_DIR / "frontend" / "driver" / "sw.js"
    return path.read_text()


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    shell = ["/driver/", "/driver/manifest.webmanifest", *(static(name) for name in SHELL_STATIC)]
    source = _worker_source()
    # The version names what is cached: a changed worker or a changed hashed URL makes a new cache.
    version = hashlib.sha256((source + json.dumps(shell)).encode()).hexdigest()[:12]
    body = source.replace("self.__SHELL__", json.dumps(shell)).replace("self.__VERSION__", json.dumps(version))
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/driver/"
    return response
