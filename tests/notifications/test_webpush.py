"""Web Push end to end through the real pywebpush path: a push service of the test's own
on a loopback port receives the POST, checks the VAPID JWT against the public key, and
decrypts the aes128gcm payload with the browser's keys made here. A subscription the
push service says is gone is dropped, and an endpoint on a private address is never
posted to unless allow-listed (the outbound-webhook guard)."""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from py_vapid import Vapid02

from apps.notifications.models import Message, PushSubscription
from apps.notifications.services import message_prepare, message_send, push_subscribe

from .conftest import MORNING

SUBJECT = "mailto:ops@acme.example"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushService:
    """A push service on 127.0.0.1: records each POST and answers ``status``."""

    status: int = 201
    received: list[dict] = field(default_factory=list)
    port: int = 0

    def endpoint(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/push/{name}"


@pytest.fixture
def push_service():
    service = PushService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            service.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body})
            self.send_response(service.status)
            if service.status == 201:
                self.send_header("Location", f"http://127.0.0.1:{service.port}/message/{len(service.received)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def vapid(settings):
    key = Vapid02()
    key.generate_keys()
    settings.WEBPUSH_VAPID_PRIVATE_KEY = key.private_pem().decode()
    settings.WEBPUSH_VAPID_SUBJECT = SUBJECT
    return key.public_key


@pytest.fixture
def browser():
    """The browser's side of a subscription: its P-256 key pair and auth secret."""
    private = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    p256dh = private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return private, b64url(p256dh), auth


@pytest.fixture
def allow_loopback(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def verified_claims(authorization: str, public_key: ec.EllipticCurvePublicKey) -> dict:
    """RFC 8292: ``vapid t=<JWT>, k=<public key>``; the JWT signed ES256 with that key."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    sent_key = unb64url(fields["k"])
    assert sent_key == public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return jwt_claims(fields["t"], public_key)


def jwt_claims(token: str, public_key: ec.EllipticCurvePublicKey) -> dict:
    header, payload, signature = token.split(".")
    assert json.loads(unb64url(header)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    return json.loads(unb64url(payload))


def test_a_push_reaches_the_push_service_signed_and_readable_only_by_the_browser(
        erika, clock, push_service, vapid, browser, allow_loopback):
    private, p256dh, auth = browser
    push_subscribe(order=erika, endpoint=push_service.endpoint("sub-erika"), p256dh=p256dh, auth=b64url(auth))
    message = message_prepare(order_id=erika.pk, trigger="out_for_delivery")

    assert message_send(message_id=message.pk) == "sent"

    (post,) = push_service.received
    assert post["path"] == "/push/sub-erika"
    headers = post["headers"]
    assert (headers["content-encoding"], headers["ttl"], headers["topic"]) == ("aes128gcm", "3600",
                                                                               f"lastmile-{message.pk}")
    claims = verified_claims(headers["authorization"], vapid)
    assert claims["aud"] == f"http://127.0.0.1:{push_service.port}"
    assert claims["sub"] == SUBJECT
    assert MORNING.timestamp() < claims["exp"] <= MORNING.timestamp() + 24 * 3600  # RFC 8292: at most a day
    assert message.body.encode() not in post["body"]
    shown = json.loads(http_ece.decrypt(post["body"], private_key=private, auth_secret=auth, version="aes128gcm"))
    assert shown == {"title": message.subject or "Your delivery", "body": message.body, "url": "",
                     "tag": f"lastmile-{message.pk}"}
    message.refresh_from_db()
    assert (message.status, message.provider_id) == ("sent", f"http://127.0.0.1:{push_service.port}/message/1")


def test_a_forged_vapid_signature_is_told_apart(erika, clock, push_service, vapid, browser, allow_loopback):
    """The check above can fail: a JWT signed by another key does not verify."""
    _, p256dh, auth = browser
    push_subscribe(order=erika, endpoint=push_service.endpoint("sub-erika"), p256dh=p256dh, auth=b64url(auth))
    message_send(message_id=message_prepare(order_id=erika.pk, trigger="out_for_delivery").pk)
    other = Vapid02()
    other.generate_keys()

    token = push_service.received[0]["headers"]["authorization"].split("t=", 1)[1].split(",", 1)[0]

    jwt_claims(token, vapid)  # the real key verifies it
    with pytest.raises(InvalidSignature):
        jwt_claims(token, other.public_key)


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_push_service_says_is_gone_is_dropped(erika, clock, push_service, vapid, browser,
                                                                  allow_loopback, status):
    push_service.status = status
    _, p256dh, auth = browser
    push_subscribe(order=erika, endpoint=push_service.endpoint("sub-gone"), p256dh=p256dh, auth=b64url(auth))
    message = message_prepare(order_id=erika.pk, trigger="out_for_delivery")

    assert message_send(message_id=message.pk) == "failed"

    assert len(push_service.received) == 1
    assert PushSubscription.objects.get().gone_at == MORNING
    assert f"subscription gone ({status})" in Message.objects.get(pk=message.pk).status_detail
    assert message_prepare(order_id=erika.pk, trigger="delivered").channel == "sms"


def test_an_endpoint_on_a_private_address_is_never_posted_to_unless_allow_listed(erika, clock, push_service, vapid,
                                                                                browser, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    _, p256dh, auth = browser
    push_subscribe(order=erika, endpoint=push_service.endpoint("sub-inside"), p256dh=p256dh, auth=b64url(auth))
    message = message_prepare(order_id=erika.pk, trigger="out_for_delivery")

    assert message_send(message_id=message.pk) == "failed"

    assert push_service.received == []
    assert "private or reserved address" in Message.objects.get(pk=message.pk).status_detail
    assert PushSubscription.objects.get().gone_at is not None
