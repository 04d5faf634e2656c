"""Email through Django's default mailer (MAILERS["default"], set from EMAIL_BACKEND:
SMTP, console, locmem, or a provider's backend such as django-anymail's)."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage

from .base import Outbound, PermanentError, SendResult, Settle, TransientError


def message_id_header(message_id: int) -> str:
    """One Message-ID per message, the same on every attempt: mail servers and clients
    take two copies with one Message-ID for one message."""
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "lastmile.invalid"
    return f"<lastmile-message-{message_id}@{domain}>"


class EmailChannel(Settle):
    name = "email"
    resend_is_safe = True  # the same Message-ID on every attempt

    def send(self, outbound: Outbound) -> SendResult:
        email = EmailMessage(subject=outbound.subject, body=outbound.body, from_email=settings.DEFAULT_FROM_EMAIL,
                             to=[outbound.recipient], headers={"X-Lastmile-Message": str(outbound.message_id),
                                                               "Message-ID": message_id_header(outbound.message_id)})
        try:
            sent = email.send()  # MAILERS["default"]
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"recipient refused: {exc}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"email backend unavailable: {exc}") from exc
        if not sent:
            raise TransientError("the email backend sent nothing")
        return SendResult(provider_id=f"email:{outbound.message_id}", delivered=False, detail="handed to the mail server")
