"""Inbound Standard Webhooks: our verifier (apps/integrations/signing.py) against the
spec's known-answer vector and its negative cases, with the reference library
(``standardwebhooks``) as the oracle, and through a generic connection's endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from apps.integrations.api import MAGENTO_SPEC
from apps.integrations.generic.mapping import spec_problems
from apps.integrations.models import InboundMessage
from apps.integrations.services.connections import connection_create
from apps.integrations.services.mappings import mapping_create
from apps.integrations.signing import verify_standard_webhook
from tests.integrations.conftest import deliver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
VECTOR = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = VECTOR, *, msg_id: str = MSG_ID, ts: int = TS) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def verify(hdrs: dict[str, str], *, body: bytes = BODY, now: float = TS, secrets=(SECRET,)) -> bool:
    return verify_standard_webhook(secrets=list(secrets), body=body, headers=hdrs, now=now)


def sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    """The signature by the spec's recipe, for ids the reference library would not take."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_the_known_answer_vector_verifies():
    assert verify(headers())


def test_the_vector_with_its_last_character_changed_fails():
    assert not verify(headers(VECTOR.replace("1OE=", "1OA=")))


@pytest.mark.parametrize(("offset", "accepted"), [(-301, False), (+301, False), (-299, True), (+299, True),
                                                  (0, True), (-86_400, False)])
def test_the_timestamp_must_be_within_five_minutes_either_way(offset, accepted):
    # "now" moves instead of the signed timestamp, so the vector itself stays valid.
    assert verify(headers(), now=TS - offset) is accepted


def test_one_valid_signature_among_bad_ones_is_enough():
    bad = [sign("whsec_" + base64.b64encode(b"wrong key %d" % n).decode(), MSG_ID, TS, BODY) for n in range(3)]

    assert verify(headers(" ".join([*bad, VECTOR])))
    assert verify(headers(" ".join(["v1a,c2lnbmVkIGJ5IGFuIGVkMjU1MTkga2V5", "v2,xyz", VECTOR])))
    assert not verify(headers(" ".join(bad)))


def test_an_id_with_a_dot_is_refused_even_when_correctly_signed():
    msg_id = "msg_1.1614265330"  # "id.ts.body" would no longer split one way

    assert not verify(headers(sign(SECRET, msg_id, TS, BODY), msg_id=msg_id))


@pytest.mark.parametrize("broken", [
    {"webhook-id": ""}, {"webhook-timestamp": ""}, {"webhook-timestamp": "1614265330.5"},
    {"webhook-timestamp": "-1614265330"}, {"webhook-timestamp": "١٦١٤٢٦٥٣٣٠"}, {"webhook-signature": ""},
    {"webhook-signature": "v1,not base64!"}, {"webhook-signature": "v1," + base64.b64encode(b"short").decode()},
    {"webhook-signature": VECTOR.removeprefix("v1,")},
])
def test_missing_or_malformed_headers_never_verify(broken):
    assert not verify({**headers(), **broken})


def test_a_one_byte_change_in_the_body_fails():
    assert not verify(headers(), body=BODY.replace(b"4", b"5", 1))


def test_a_rotated_secret_and_an_unpadded_one_both_work():
    new = "whsec_" + base64.b64encode(b"a brand new key!!").decode().rstrip("=")

    assert verify(headers(), secrets=[new, SECRET])
    assert verify(headers(sign(new + "===", MSG_ID, TS, BODY)), secrets=[SECRET, new])
    assert not verify(headers(), secrets=[new, "", "whsec_not*base64"])


def test_what_the_reference_library_signs_we_verify_and_what_it_refuses_we_refuse():
    sender = Webhook(SECRET)
    now = int(time.time())
    for msg_id, body in [("msg_2", b"{}"), ("evt-" + "x" * 200, "{\"name\": \"Zoë\"}".encode())]:
        sent = headers(sender.sign(msg_id, datetime.fromtimestamp(now, UTC), body.decode()), msg_id=msg_id, ts=now)
        assert verify(sent, body=body, now=now)
        for later in (now + 299, now + 301):
            ours = verify(sent, body=body, now=later)
            try:
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr("standardwebhooks.webhooks.datetime", _FrozenDatetime(later))
                    sender.verify(body, sent)
                theirs = True
            except Exception:
                theirs = False
            assert ours is theirs, (later - now, ours, theirs)


class _FrozenDatetime:
    """The library reads ``datetime.now``; this stands in with a fixed instant."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self, tz=None):
        return datetime.fromtimestamp(self.at, tz or UTC)

    def __getattr__(self, name):
        return getattr(datetime, name)


# --- through a generic connection ------------------------------------------------------------------

SPEC = {**MAGENTO_SPEC, "signature": {"scheme": "standard-webhooks"}, "dedupe": {"header": "webhook-id"}}


def test_a_mapping_names_the_scheme_alone():
    assert spec_problems(SPEC) == []
    assert spec_problems({**SPEC, "signature": {"scheme": "standard-webhooks", "header": "X"}})
    assert spec_problems({**SPEC, "signature": {"scheme": "stripe"}})


@pytest.fixture
def oms(acme):
    mapping = mapping_create(org=acme, name="OMS", spec=SPEC, actor_label="user:1")
    return connection_create(org=acme, kind="generic", name="OMS", store="oms.example.com", secret=SECRET,
                             mapping=mapping)


def _http(hdrs: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in hdrs.items()}


@pytest.mark.django_db
def test_a_fresh_signed_delivery_is_stored_and_a_stale_one_is_refused(web, oms):
    sender = Webhook(SECRET)
    body = b'{"entity_id": "7"}'
    now = int(time.time())
    fresh = headers(sender.sign("msg_fresh", datetime.fromtimestamp(now, UTC), body.decode()), msg_id="msg_fresh",
                    ts=now)
    stale = headers(sender.sign("msg_stale", datetime.fromtimestamp(now - 301, UTC), body.decode()),
                    msg_id="msg_stale", ts=now - 301)

    assert deliver(web, oms, body, _http(stale)).status_code == 401
    assert InboundMessage.objects.count() == 0
    assert deliver(web, oms, body, _http(fresh)).status_code == 200
    assert deliver(web, oms, body, _http(fresh)).status_code == 200  # a redelivery: the same webhook-id
    assert InboundMessage.objects.count() == 1
