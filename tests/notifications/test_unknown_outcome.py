"""A send whose outcome is unknown (the provider may have taken it: a read timeout, a
dropped connection, a worker that died mid-call) never texts the customer twice: the
provider's status callback or a lookup settles it, a channel that dedupes sends again,
and what cannot be settled waits for a person."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import requests

from apps.notifications.channels import OutcomeUnknown, TransientError
from apps.notifications.channels.sms import (
    TwilioSms,
    http_transport,
    twilio_lookup_parse,
    twilio_signature,
    with_reference,
)
from apps.notifications.models import Message, MessageStatus
from apps.notifications.services import SETTLE_AFTER_S, SETTLE_CHECKS, message_prepare, message_send, messages_sweep

from .conftest import MORNING, FakeTwilio


def listing(*messages) -> tuple[int, bytes]:
    """Twilio's answer to "list messages" (the fields we read, as Twilio spells them)."""
    return 200, json.dumps({"messages": list(messages), "page": 0, "page_size": 50}).encode()


def twilio_message(sid, to, body, created="Mon, 23 Nov 2026 09:00:01 +0000", status="sent"):
    return {"sid": sid, "to": to, "from": "+4930000000", "body": body, "status": status, "date_created": created,
            "direction": "outbound-api"}


class Provider(FakeTwilio):
    """The Twilio seam: POSTs (create) and GETs (lookups) answered from two queues."""

    def __init__(self, posts, gets=()) -> None:
        super().__init__(*posts)
        self.gets = list(gets)
        self.lookups: list[str] = []
        self.meanwhile = None  # runs when a create call arrives, before its answer

    def __call__(self, url, form, auth):
        if form is None:
            self.lookups.append(url)
            answer = self.gets.pop(0) if len(self.gets) > 1 else self.gets[0]
            if isinstance(answer, Exception):
                raise answer
            return answer
        if self.meanwhile is not None:
            self.meanwhile()
        return super().__call__(url, form, auth)

    @property
    def creates(self):
        return [call for call in self.calls if call[1] is not None]


@pytest.fixture
def twilio(monkeypatch):
    def install(posts, gets=()):
        provider = Provider(posts, gets)
        sms = TwilioSms(account_sid="AC1", auth_token="t", sender="+4930000000",
                        status_callback="https://lastmile.example/api/v1/notifications/twilio/status/",
                        transport=provider)
        monkeypatch.setattr("apps.notifications.services.backend", lambda channel: sms)
        return provider
    return install


@pytest.fixture
def message(erika, clock):
    return message_prepare(order_id=erika.pk, trigger="scheduled")


def timed_out():
    return OutcomeUnknown("no answer from Twilio after sending: read timed out")


class TestAfterATimeout:
    def test_the_message_waits_unconfirmed_instead_of_being_sent_again(self, twilio, message, clock):
        provider = twilio([timed_out()], [listing()])

        assert message_send(message_id=message.pk) == "retry"

        message.refresh_from_db()
        assert message.status == "unconfirmed" and message.attempted_at == MORNING
        assert message.next_attempt_at == MORNING + timedelta(seconds=SETTLE_AFTER_S)
        assert message_send(message_id=message.pk) == "not_due"
        assert len(provider.creates) == 1 and provider.lookups == []

    def test_found_at_the_provider_it_is_marked_sent_and_not_sent_again(self, twilio, message, clock):
        provider = twilio([timed_out()])
        message_send(message_id=message.pk)
        provider.gets = [listing(twilio_message("SMold", "+4915100000001", "another text"),
                                 twilio_message("SM77", "+4915100000001", message.body))]
        clock.shift(timedelta(seconds=SETTLE_AFTER_S))

        assert message_send(message_id=message.pk) == "sent"

        message.refresh_from_db()
        assert (message.status, message.provider_id, message.attempts) == ("sent", "SM77", 1)
        assert len(provider.creates) == 1
        assert "To=%2B4915100000001" in provider.lookups[0]
        assert "not sent again" in message.log.order_by("-id").first().detail
        assert message_send(message_id=message.pk) == "skipped"

    def test_not_found_at_the_provider_it_is_sent_again_once(self, twilio, message, clock):
        # An older copy of the same text (yesterday's) is not this attempt's.
        provider = twilio([timed_out(), (201, b'{"sid": "SM78", "status": "queued"}')],
                          [listing(twilio_message("SMy", "+4915100000001", message.body,
                                                  created="Sun, 22 Nov 2026 09:00:01 +0000"))])
        message_send(message_id=message.pk)
        clock.shift(timedelta(seconds=SETTLE_AFTER_S))

        assert message_send(message_id=message.pk) == "sent"

        message.refresh_from_db()
        assert (message.status, message.provider_id, message.attempts) == ("sent", "SM78", 2)
        assert len(provider.creates) == 2 and len(provider.lookups) == 1

    def test_a_provider_that_cannot_say_is_asked_again_then_left_for_a_person(self, twilio, message, clock):
        provider = twilio([timed_out()], [TransientError("Twilio lookup 503")])
        message_send(message_id=message.pk)
        outcomes = []
        for _ in range(SETTLE_CHECKS):
            message.refresh_from_db()
            clock.move_to(message.next_attempt_at)
            outcomes.append(message_send(message_id=message.pk))

        assert outcomes == ["retry"] * (SETTLE_CHECKS - 1) + ["review"]
        message.refresh_from_db()
        assert message.status == "review" and "check with the provider" in message.status_detail
        assert len(provider.creates) == 1  # never sent again blindly
        clock.shift(timedelta(days=1))
        assert message_send(message_id=message.pk) == "skipped"
        assert messages_sweep()["requeued"] == 0

    def test_twilios_status_callback_settles_it_before_any_lookup(self, twilio, message, clock, anonymous, settings):
        settings.TWILIO_AUTH_TOKEN = "twilio-secret"
        provider = twilio([timed_out()])
        message_send(message_id=message.pk)
        (_, form, _), = provider.creates
        assert form["StatusCallback"].endswith(f"/twilio/status/?message={message.pk}")
        url = f"http://testserver/api/v1/notifications/twilio/status/?message={message.pk}"
        report = {"MessageSid": "SM79", "MessageStatus": "sent"}

        response = anonymous.post(url, urlencode(report), content_type="application/x-www-form-urlencoded",
                                  HTTP_X_TWILIO_SIGNATURE=twilio_signature(auth_token="twilio-secret", url=url,
                                                                           params=report))

        assert response.status_code == 204
        message.refresh_from_db()
        assert (message.status, message.provider_id) == ("sent", "SM79")
        clock.shift(timedelta(seconds=SETTLE_AFTER_S))
        assert message_send(message_id=message.pk) == "skipped"
        assert len(provider.creates) == 1 and provider.lookups == []

    def test_a_report_racing_the_answer_is_not_undone_by_it(self, twilio, message, clock):
        from apps.notifications.services import message_status_report

        provider = twilio([timed_out()])
        provider.meanwhile = lambda: message_status_report(provider_id="SM80", provider_status="delivered",
                                                           reference=message.pk)

        assert message_send(message_id=message.pk) == "retry"

        message.refresh_from_db()
        assert (message.status, message.provider_id) == ("delivered", "SM80")


class TestAfterAWorkerDiedMidCall:
    def test_the_sweep_asks_the_provider_before_anything_is_sent_again(self, twilio, message, clock):
        provider = twilio([(201, b"{}")], [listing(twilio_message("SM81", "+4915100000001", message.body,
                                                                   created="Mon, 23 Nov 2026 09:00:00 +0000"))])
        # The worker claimed it, called Twilio, and died before recording the answer.
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING, attempts=1, attempted_at=MORNING)
        clock.shift(timedelta(minutes=11))

        assert messages_sweep() == {"stuck": 1, "requeued": 1}
        assert message_send(message_id=message.pk) == "sent"

        message.refresh_from_db()
        assert (message.status, message.provider_id) == ("sent", "SM81")
        assert provider.creates == []


class TestTwilioSpeech:
    def test_the_callback_url_carries_our_message_id(self):
        assert with_reference("https://x.example/cb/", 7) == "https://x.example/cb/?message=7"
        assert with_reference("https://x.example/cb/?org=1", 7) == "https://x.example/cb/?org=1&message=7"
        assert with_reference("", 7) == ""

    def test_a_lookup_matches_recipient_text_and_time(self):
        since = MORNING
        page = listing(twilio_message("SM1", "+49151", "Hello", created="Mon, 23 Nov 2026 08:59:30 +0000"),
                       twilio_message("SM2", "+49152", "Hello"))

        assert twilio_lookup_parse(*page, to="+49151", body="Hello", since=since).provider_id == "SM1"
        assert twilio_lookup_parse(*page, to="+49151", body="Hi", since=since) is None
        assert twilio_lookup_parse(*page, to="+49151", body="Hello", since=since + timedelta(minutes=2)) is None
        with pytest.raises(TransientError):
            twilio_lookup_parse(503, b"", to="+49151", body="Hello", since=since)

    def test_a_gateway_timeout_is_an_unknown_outcome(self):
        from apps.notifications.channels.sms import twilio_parse

        with pytest.raises(OutcomeUnknown):
            twilio_parse(504, b"")

    def test_no_answer_after_sending_is_unknown_but_a_refused_connection_is_not(self, monkeypatch):
        import socket

        with socket.socket() as closed:  # a port nobody listens on
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        with pytest.raises(TransientError):
            http_transport(f"http://127.0.0.1:{port}/Messages.json", {"To": "+49"}, ("AC1", "t"))

        def read_timeout(*args, **kwargs):
            raise requests.ReadTimeout("read timed out")

        monkeypatch.setattr(requests, "post", read_timeout)
        with pytest.raises(OutcomeUnknown):
            http_transport("https://api.twilio.com/Messages.json", {"To": "+49"}, ("AC1", "t"))
        monkeypatch.setattr(requests, "get", read_timeout)
        with pytest.raises(TransientError):  # a lookup that times out changes nothing at Twilio
            http_transport("https://api.twilio.com/Messages.json?To=%2B49", None, ("AC1", "t"))


def test_an_email_sent_twice_carries_one_message_id(settings):
    from django.core import mail

    from apps.notifications.channels import Outbound
    from apps.notifications.channels.email import EmailChannel

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    settings.DEFAULT_FROM_EMAIL = "Acme <deliveries@acme.example>"
    for _ in range(2):
        EmailChannel().send(Outbound(message_id=7, recipient="erika@example.com", body="Hello", subject="Hi"))

    ids = {email.message()["Message-ID"] for email in mail.outbox}
    assert ids == {"<lastmile-message-7@acme.example>"}


class TestReview:
    def test_a_person_settles_a_message_in_review_and_only_then_it_moves(self, twilio, message, clock,
                                                                          django_capture_on_commit_callbacks):
        from django_tasks_db.models import DBTaskResult

        from apps.notifications.services import message_review_settle

        provider = twilio([timed_out(), (201, b'{"sid": "SM90", "status": "queued"}')], [TransientError("down")])
        message_send(message_id=message.pk)
        assert message_review_settle(message_id=message.pk, resend=True, by="dave") is False  # not in review yet
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.REVIEW)

        with django_capture_on_commit_callbacks(execute=True):
            assert message_review_settle(message_id=message.pk, resend=True, by="dave") is True

        assert DBTaskResult.objects.filter(task_path="apps.notifications.tasks.notification_send").exists()
        assert message_send(message_id=message.pk) == "sent"
        assert len(provider.creates) == 2
        assert "by dave" in message.log.order_by("-id")[1].detail

    def test_confirmed_sent_is_never_sent_again(self, twilio, message, clock):
        from apps.notifications.services import message_review_settle

        provider = twilio([timed_out()])
        message_send(message_id=message.pk)
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.REVIEW)

        assert message_review_settle(message_id=message.pk, resend=False, by="dave") is True

        assert Message.objects.get(pk=message.pk).status == "sent"
        assert message_send(message_id=message.pk) == "skipped" and len(provider.creates) == 1


def test_a_report_about_a_second_copy_is_kept_on_the_record(twilio, message, clock):
    from apps.notifications.services import message_status_report

    twilio([timed_out(), (201, b'{"sid": "SM91", "status": "queued"}')], [listing()])
    message_send(message_id=message.pk)
    clock.shift(timedelta(seconds=SETTLE_AFTER_S))
    message_send(message_id=message.pk)  # the lookup missed the first copy; sent again

    assert message_status_report(provider_id="SM90", provider_status="delivered", reference=message.pk) is None

    message.refresh_from_db()
    assert (message.status, message.provider_id) == ("sent", "SM91")
    assert "another copy SM90: delivered" in message.log.order_by("-id").first().detail
