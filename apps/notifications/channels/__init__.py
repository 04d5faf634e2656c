"""Channels behind one interface: ``send(outbound) -> SendResult``, raising
``TransientError`` (retry later: an outage, a rate limit, a connection refused),
``PermanentError`` (never retry: a bad number, an expired subscription) or
``OutcomeUnknown`` (the provider may have taken it: settle before sending again, see
``base.Settle``).

Each backend has one I/O seam that tests replace with a fake transport: Django's email
backend for email, ``TwilioSms.transport`` for SMS, ``WebPush.session`` (pywebpush's
``requests_session``) for Web Push. One registry, ``backend(channel)``: no plugin loader.
"""

from __future__ import annotations

from django.conf import settings

from .base import Outbound, OutcomeUnknown, PermanentError, SendResult, TransientError

__all__ = ["Outbound", "OutcomeUnknown", "PermanentError", "SendResult", "TransientError", "backend"]


def backend(channel: str):
    from .email import EmailChannel
    from .push import WebPush
    from .sms import LoggingSms, TwilioSms

    if channel == "email":
        return EmailChannel()
    if channel == "push":
        return WebPush.from_settings()
    if channel == "sms":
        return TwilioSms.from_settings() if settings.NOTIFY_SMS_BACKEND == "twilio" else LoggingSms()
    raise ValueError(f"unknown channel {channel!r}")
