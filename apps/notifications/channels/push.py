"""Web Push with VAPID (pywebpush) to browsers that opted in on the tracking page.

The I/O seam is pywebpush's ``requests_session``: a test passes a fake session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .base import Outbound, PermanentError, SendResult, TransientError


@dataclass
class WebPush:
    private_key: str
    subject: str
    session: Any = None  # a requests.Session; None: pywebpush's default
    name: str = "push"

    @classmethod
    def from_settings(cls) -> WebPush:
        return cls(private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY, subject=settings.WEBPUSH_VAPID_SUBJECT)

    def send(self, outbound: Outbound) -> SendResult:
        from pywebpush import WebPushException, webpush

        if not self.private_key:
            raise PermanentError("Web Push is not configured (WEBPUSH_VAPID_PRIVATE_KEY)")
        subscription = {"endpoint": outbound.recipient, "keys": {"p256dh": outbound.extra.get("p256dh", ""),
                                                                 "auth": outbound.extra.get("auth", "")}}
        data = json.dumps({"title": outbound.subject or "Your delivery", "body": outbound.body, "url": outbound.url})
        key: Any = self.private_key
        if key.lstrip().startswith("-----BEGIN"):  # a PEM file's content (as `vapid --gen` writes it)
            from py_vapid import Vapid02

            key = Vapid02.from_pem(key.encode())
        try:
            response = webpush(subscription_info=subscription, data=data, vapid_private_key=key,
                               vapid_claims={"sub": self.subject}, ttl=3600, timeout=10,
                               requests_session=self.session)
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                raise PermanentError(f"subscription gone ({status})") from exc
            if status is None or status == 429 or status >= 500:
                raise TransientError(f"push service unavailable: {exc}") from exc
            raise PermanentError(f"push refused ({status}): {exc}") from exc
        except OSError as exc:  # connection errors and timeouts (requests' are OSErrors)
            raise TransientError(f"push service unreachable: {exc}") from exc
        except ValueError as exc:  # keys that do not decode: the subscription is unusable
            raise PermanentError(f"bad subscription: {exc}") from exc
        return SendResult(provider_id=str(getattr(response, "headers", {}).get("Location", ""))[:100],
                          detail=f"accepted ({getattr(response, 'status_code', '')})")
