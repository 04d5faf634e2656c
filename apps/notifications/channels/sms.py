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

from django.conf import settings

from .base import Outbound, PermanentError, SendResult, TransientError

logger = logging.getLogger("apps.notifications.sms")

API = "https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json"


class LoggingSms:
    """Writes each SMS to the log instead of sending it (development, demos, tests)."""

    name = "sms"

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


def twilio_parse(status: int, payload: bytes) -> SendResult:
    """Twilio's answer as a result, or the error to raise: 429 and 5xx are transient,
    other 4xx permanent (an invalid number, an unverified sender)."""
    try:
        data = json.loads(payload or b"{}")
    except ValueError:
        data = {}
    if status in (200, 201):
        return SendResult(provider_id=str(data.get("sid", "")), detail=str(data.get("status", "queued")))
    detail = f"Twilio {status}: {data.get('code', '')} {data.get('message', '')}".strip()
    if status == 429 or status >= 500:
        raise TransientError(detail)
    raise PermanentError(detail)


def twilio_signature(*, auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 over the URL and the sorted POST parameters, base64."""
    signed = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


Transport = Callable[[str, dict[str, str], tuple[str, str]], tuple[int, bytes]]


def http_transport(url: str, form: dict[str, str], auth: tuple[str, str]) -> tuple[int, bytes]:
    """The one place SMS touches the network."""
    import requests

    try:
        response = requests.post(url, data=form, auth=auth, timeout=10)
    except requests.RequestException as exc:  # connection refused, DNS, timeout
        raise TransientError(f"Twilio unreachable: {exc}") from exc
    return response.status_code, response.content


@dataclass
class TwilioSms:
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
                                   body=outbound.body, status_callback=self.status_callback)
        status, payload = self.transport(url, form, (self.account_sid, self.auth_token))
        return twilio_parse(status, payload)
