"""The customer's tracking page, ``/track/<token>/``: a server-rendered shell for
``frontend/track/``. Everything the page shows comes over ``/ws/track/<token>/`` (and
``GET /api/v1/track/<token>/``), built by ``customer.tracking_snapshot``."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .ratelimit import allow, client_address
from .selectors import tracking_order, tracking_settings


def track_page(request: HttpRequest, token: str) -> HttpResponse:
    if not allow(client_address(request)):
        response = render(request, "tracking/message.html", {
            "title": "Too many requests", "message": "Please wait a minute and try again."}, status=429)
        response["Retry-After"] = "60"
        return response
    order = tracking_order(token=token)
    if order is None:
        # A plain page, the same for an unknown, revoked or expired link: nothing to learn.
        return render(request, "tracking/message.html", {
            "title": "Link not found", "message": "This tracking link does not exist or is no longer valid."},
            status=404)
    rules = tracking_settings(org_id=order.org_id)
    brand = {"name": rules.brand_name or order.org.name, "logo_url": rules.logo_url or None,
             "colour": rules.brand_colour}
    response = render(request, "tracking/track.html", {
        "brand": brand,
        "page_config": {
            "token": token,
            "brand": brand,
            "timezone": order.org.timezone,
            "tileUrl": settings.MAP_TILE_URL,
            "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
            "vapidPublicKey": settings.WEBPUSH_VAPID_PUBLIC_KEY or None,
        },
    })
    # The link is a credential: keep it out of other sites' Referer headers and caches.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response
