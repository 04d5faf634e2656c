from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Outbound:
    """One message to send, whatever the channel."""

    message_id: int
    recipient: str  # phone (E.164), email address, or a push subscription endpoint
    body: str
    subject: str = ""
    url: str = ""  # the tracking link, for channels that can carry one apart from the text
    extra: dict[str, Any] = field(default_factory=dict)  # push: {"p256dh", "auth"}


@dataclass(frozen=True)
class SendResult:
    provider_id: str = ""
    # True when the provider confirmed delivery already (email handed to the MTA, a log
    # line); SMS and push report delivery later, by callback, or not at all.
    delivered: bool = False
    detail: str = ""


class TransientError(Exception):
    """Try again later: the provider is down, slow, or rate-limiting us."""


class PermanentError(Exception):
    """Never try again: the address is invalid, the subscription gone, the content refused."""


class OutcomeUnknown(Exception):
    """The request may have reached the provider and no answer says whether it took the
    message (a read timeout, a connection dropped after the request was sent, a gateway
    timeout). Sending again blindly could text the customer twice: the caller settles it
    first (``services.message_send``: the provider's status callback, a lookup at the
    provider, a resend only where the channel dedupes, else a person)."""


class Settle:
    """How a channel settles an unknown outcome. ``lookup`` returns what the provider
    has for the message (a ``SendResult``), None if it has nothing, or raises
    ``TransientError`` when it cannot say now. ``resend_is_safe`` channels carry their
    own dedupe key (a push Topic and notification tag, an email Message-ID), so a
    second copy replaces the first instead of adding to it."""

    resend_is_safe = False

    def lookup(self, outbound: Outbound, *, since: datetime) -> SendResult | None:
        raise NotImplementedError
