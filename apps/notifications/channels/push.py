"""Web Push with VAPID (pywebpush) to browsers that opted in on the tracking page.

The I/O seam is pywebpush's ``requests_session``. In production it is ``GuardedSession``:
the endpoint is a URL a browser handed us, so it goes through the same private-address
guard as outbound webhooks (``apps.integrations.outbound.transport``: resolved once,
private, loopback and link-local addresses refused unless in WEBHOOK_ALLOWED_NETWORKS,
the connection pinned to the checked address, no redirects). Tests pass a fake session,
or the guarded one and a push service of their own on an allow-listed loopback port.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .base import Outbound, PermanentError, SendResult, Settle, TransientError


def topic(message_id: int) -> str:
    """RFC 8030 ``Topic`` (at most 32 URL-safe base64 characters): a push service
    replaces an undelivered message with a newer one of the same topic, so a resend
    after an unknown outcome does not queue a second copy."""
    return f"lastmile-{message_id}"


@dataclass
class _Response:
    """What pywebpush reads of a response."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def reason(self) -> str:
        from http import HTTPStatus

        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""


class EndpointRefused(Exception):
    """The subscription's endpoint resolves to an address we never send to."""


@dataclass
class GuardedSession:
    """pywebpush's session, posting through the outbound-webhook transport."""

    allowed_networks: list[str] = field(default_factory=list)

    def post(self, url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float | None = None, **_: Any) -> _Response:
        from apps.integrations.outbound.transport import DestinationRefused, SafeHttpTransport, TransportError

        transport = SafeHttpTransport(allowed_networks=self.allowed_networks)
        try:
            response = transport.request("POST", url, body=data, headers={k: str(v) for k, v in (headers or {}).items()},
                                         timeout=timeout or 10)
        except DestinationRefused as exc:
            raise EndpointRefused(str(exc)) from exc
        except TransportError as exc:
            raise OSError(str(exc)) from exc
        return _Response(response.status, response.headers, response.body)


@dataclass
class WebPush(Settle):
    private_key: str
    subject: str
    session: Any = None  # a requests.Session-like object; None: GuardedSession
    name: str = "push"
    # A second copy carries the same Topic (the push service keeps one) and the same
    # notification tag (the browser shows one: frontend/track/sw.js).
    resend_is_safe = True

    @classmethod
    def from_settings(cls) -> WebPush:
        return cls(private_key=settings.WEBPUSH_VAPID_PRIVATE_KEY, subject=settings.WEBPUSH_VAPID_SUBJECT)

    def send(self, outbound: Outbound) -> SendResult:
        from pywebpush import WebPushException, webpush

        if not self.private_key:
            raise PermanentError("Web Push is not configured (WEBPUSH_VAPID_PRIVATE_KEY)")
        subscription = {"endpoint": outbound.recipient, "keys": {"p256dh": outbound.extra.get("p256dh", ""),
                                                                 "auth": outbound.extra.get("auth", "")}}
        data = json.dumps({"title": outbound.subject or "Your delivery", "body": outbound.body, "url": outbound.url,
                           "tag": topic(outbound.message_id)})
        key: Any = self.private_key
        if key.lstrip().startswith("-----BEGIN"):  # a PEM file's content (as `vapid --gen` writes it)
            from py_vapid import Vapid02

            key = Vapid02.from_pem(key.encode())
        session = self.session if self.session is not None else GuardedSession(list(settings.WEBHOOK_ALLOWED_NETWORKS))
        try:
            response = webpush(subscription_info=subscription, data=data, vapid_private_key=key,
                               vapid_claims={"sub": self.subject}, ttl=3600, timeout=10,
                               headers={"Topic": topic(outbound.message_id), "Urgency": "normal"},
                               requests_session=session)
        except EndpointRefused as exc:
            raise PermanentError(f"push endpoint refused: {exc}") from exc
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                raise PermanentError(f"subscription gone ({status})") from exc
            if status is None or status == 429 or status >= 500:
                raise TransientError(f"push service unavailable: {exc}") from exc
            raise PermanentError(f"push refused ({status}): {exc}") from exc
        except OSError as exc:  # connection errors and timeouts: a resend is safe (see resend_is_safe)
            raise TransientError(f"push service unreachable: {exc}") from exc
        except ValueError as exc:  # keys that do not decode: the subscription is unusable
            raise PermanentError(f"bad subscription: {exc}") from exc
        return SendResult(provider_id=str(getattr(response, "headers", {}).get("Location", "")
                                          or getattr(response, "headers", {}).get("location", ""))[:100],
                          detail=f"accepted ({getattr(response, 'status_code', '')})")
