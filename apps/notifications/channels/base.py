from __future__ import annotations

from dataclasses import dataclass, field
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
