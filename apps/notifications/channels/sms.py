"""SMS: a logging backend (the default: nothing leaves the machine) and Twilio.

Twilio is spoken over its REST API with pure functions that build the request and parse
the answer (golden-tested), and one I/O seam, ``transport``, that a test replaces.
Docs: https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from django.conf import settings

from .base import Outbound, OutcomeUnknown, PermanentError, SendResult, Settle, TransientError

logger = logging.getLogger("apps.notifications.sms")

API = "https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json"


class LoggingSms(Settle):
    """Writes each SMS to the log instead of sending it (development, demos, tests)."""

    name = "sms"
    resend_is_safe = True  # nothing leaves the machine: a second log line texts nobody

    def send(self, outbound: Outbound) -> SendResult:
        logger.info("SMS to %s: %s", outbound.recipient, outbound.body)
        return SendResult(provider_id=f"log:{outbound.message_id}", delivered=True, detail="written to the log")


# --- Twilio: pure request building and response parsing --------------------------------


def twilio_request(*, account_sid: str, sender: str, to: str, body: str, status_callback: str) -> tuple[str, dict[str, str]]:
    """The URL and form fields of Twilio's "create a message" call. ``sender`` is a phone
    number or a Messaging Service SID (``MG…``)."""
    form = {"To": to, "Body": body}
    form["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
    if status_callback:
        form["StatusCallback"] = status_callback
    return API.format(sid=account_sid), form


def with_reference(status_callback: str, message_id: int) -> str:
    """The status callback URL carrying our message id, so Twilio's first report about
    the message names it even when its answer to the create call never reached us."""
    if not status_callback:
        return ""
    return f"{status_callback}{'&' if '?' in status_callback else '?'}{urlencode({'message': message_id})}"


def twilio_lookup_request(*, account_sid: str, to: str) -> str:
    """Twilio's "list messages" call for the latest texts to ``to``, newest first. Not
    filtered on ``DateSent``: a message still queued has no send date and would be missed."""
    return f"{API.format(sid=account_sid)}?{urlencode([('To', to), ('PageSize', '50')])}"


def twilio_lookup_parse(status: int, payload: bytes, *, to: str, body: str, since: datetime) -> SendResult | None:
    """The message we tried to send, if Twilio has it: same recipient, same text,
    created no earlier than a minute before our attempt (clocks differ). None when it
    has none; ``TransientError`` when Twilio cannot say."""
    if status != 200:
        raise TransientError(f"Twilio lookup {status}")
    try:
        messages = json.loads(payload or b"{}").get("messages") or []
    except (ValueError, AttributeError) as exc:
        raise TransientError(f"Twilio lookup unreadable: {exc}") from exc
    earliest = since - timedelta(minutes=1)
    for item in messages:
        try:
            created = parsedate_to_datetime(item.get("date_created") or "")
        except (TypeError, ValueError):
            continue
        if item.get("to") == to and item.get("body") == body and created >= earliest:
            return SendResult(provider_id=str(item.get("sid", "")), detail=str(item.get("status", "")))
    return None


def twilio_parse(status: int, payload: bytes) -> SendResult:
    """Twilio's answer as a result, or the error to raise: 429 and 5xx are transient,
    except a gateway timeout (504), after which Twilio may have created the message;
    other 4xx permanent (an invalid number, an unverified sender)."""
    try:
        data = json.loads(payload or b"{}")
    except ValueError:
        data = {}
    if status in (200, 201):
        return SendResult(provider_id=str(data.get("sid", "")), detail=str(data.get("status", "queued")))
    detail = f"Twilio {status}: {data.get('code', '')} {data.get('message', '')}".strip()
    if status == 504:
        raise OutcomeUnknown(detail)
    if status == 429 or status >= 500:
        raise TransientError(detail)
    raise PermanentError(detail)


def twilio_signature(*, auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 over the URL and the sorted POST parameters, base64."""
    signed = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


Transport = Callable[[str, dict[str, str] | None, tuple[str, str]], tuple[int, bytes]]


def _sent_nothing(exc: Exception) -> bool:
    """Whether a requests failure happened before the request left: DNS, a refused or
    timed-out connection. Anything later (a read timeout, a reset after sending) may
    have reached Twilio."""
    import requests
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | NameResolutionError)


def http_transport(url: str, form: dict[str, str] | None, auth: tuple[str, str]) -> tuple[int, bytes]:
    """The one place SMS touches the network: a POST with ``form``, a GET without."""
    import requests

    try:
        if form is None:
            response = requests.get(url, auth=auth, timeout=10)
        else:
            response = requests.post(url, data=form, auth=auth, timeout=10)
    except requests.RequestException as exc:
        if form is None or _sent_nothing(exc):
            raise TransientError(f"Twilio unreachable: {exc}") from exc
        raise OutcomeUnknown(f"no answer from Twilio after sending: {exc}") from exc
    return response.status_code, response.content


@dataclass
class TwilioSms(Settle):
    account_sid: str
    auth_token: str
    sender: str
    status_callback: str = ""
    transport: Transport = http_transport
    name: str = "sms"

    @classmethod
    def from_settings(cls) -> TwilioSms:
        return cls(account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN,
                   sender=settings.TWILIO_FROM, status_callback=settings.TWILIO_STATUS_CALLBACK_URL)

    def send(self, outbound: Outbound) -> SendResult:
        url, form = twilio_request(account_sid=self.account_sid, sender=self.sender, to=outbound.recipient,
                                   body=outbound.body,
                                   status_callback=with_reference(self.status_callback, outbound.message_id))
        status, payload = self.transport(url, form, (self.account_sid, self.auth_token))
        return twilio_parse(status, payload)

    def lookup(self, outbound: Outbound, *, since: datetime) -> SendResult | None:
        """Twilio has no idempotency key for messages: after an unknown outcome we ask it
        for the text we tried to send before sending it again."""
        url = twilio_lookup_request(account_sid=self.account_sid, to=outbound.recipient)
        status, payload = self.transport(url, None, (self.account_sid, self.auth_token))
        return twilio_lookup_parse(status, payload, to=outbound.recipient, body=outbound.body, since=since)
