"""A mail server for fault tests, run inside worker processes (EMAIL_BACKEND): while the
file named by ``FAULTS_MAIL_HOLD`` exists it holds the connection without accepting (and
touches ``<hold>.waiting`` to say a send has begun); otherwise it accepts each email by
appending it as a JSON line to ``FAULTS_MAIL_OUTBOX``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class HeldMailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        hold = Path(os.environ["FAULTS_MAIL_HOLD"])
        if hold.exists():
            Path(f"{hold}.waiting").touch()
        started = time.monotonic()
        while hold.exists() and time.monotonic() - started < 60:
            time.sleep(0.05)
        with open(os.environ["FAULTS_MAIL_OUTBOX"], "a") as outbox:
            for email in email_messages:
                outbox.write(json.dumps({"to": email.to, "subject": email.subject,
                                         "message": email.extra_headers.get("X-Lastmile-Message")}) + "\n")
        return len(email_messages)
