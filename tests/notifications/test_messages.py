"""Customer notifications: triggers, one message per trigger per order, quiet hours,
opt-out, the channels against fake transports, and retries through a provider outage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from apps.accounts.actor import system_actor
from apps.dispatch.models import Stop
from apps.dispatch.services.routes import route_publish, route_start
from apps.dispatch.services.stops import stop_fail
from apps.notifications.channels import Outbound, PermanentError, TransientError
from apps.notifications.channels.sms import TwilioSms, twilio_parse, twilio_request, twilio_signature
from apps.notifications.models import Message, MessageStatus, NotificationRule, NotificationSettings, OptOut, PushSubscription
from apps.notifications.services import message_prepare, message_send, opt_out_record, push_subscribe
from apps.notifications.tasks import notification_prepare

from .conftest import MORNING, FakeTwilio

FORM = "application/x-www-form-urlencoded"


def queued(trigger=None):
    rows = DBTaskResult.objects.filter(task_path="apps.notifications.tasks.notification_prepare")
    return [r.args_kwargs["args"] for r in rows if trigger is None or r.args_kwargs["args"][1] == trigger]


class TestTriggers:
    def test_publishing_queues_the_scheduled_message_with_the_change(self, route, erika, acme):
        route_publish(actor=system_actor(acme), route=route)

        assert queued("scheduled") == [[erika.pk, "scheduled"]]

    def test_a_change_that_rolls_back_queues_nothing(self, route, acme):
        with pytest.raises(RuntimeError), transaction.atomic():
            route_publish(actor=system_actor(acme), route=route)
            raise RuntimeError("the request failed after publishing")

        assert queued() == []

    def test_setting_off_and_a_failed_attempt_queue_their_messages(self, route, erika, acme):
        actor = system_actor(acme)
        route_publish(actor=actor, route=route)
        route_start(actor=actor, route=route)
        stop_fail(actor=actor, stop=Stop.objects.get(order=erika), reason="recipient_absent")

        assert [t for _, t in queued()] == ["scheduled", "out_for_delivery", "failed"]

    def test_the_scheduled_text_names_the_window_and_the_tracking_link(self, route, erika, acme, caplog):
        route_publish(actor=system_actor(acme), route=route)

        assert notification_prepare.call(erika.pk, "scheduled") == "sent"

        message = Message.objects.get()
        assert (message.channel, message.recipient, message.status) == ("sms", "+4915100000001", "delivered")
        assert "Mon 23 Nov, 13:00–15:00" in message.body  # Berlin time
        assert "http://127.0.0.1:8000/track/" in message.body and "A-1001" in message.body
        assert message.body in caplog.text  # the logging SMS backend

    def test_the_failed_text_gives_the_reason_and_the_next_step(self, route, erika, acme):
        actor = system_actor(acme)
        route_publish(actor=actor, route=route)
        route_start(actor=actor, route=route)
        stop_fail(actor=actor, stop=Stop.objects.get(order=erika), reason="recipient_absent")

        notification_prepare.call(erika.pk, "failed")

        body = Message.objects.get(trigger="failed").body
        assert "nobody was at home" in body and "try again" in body

    def test_an_organization_switches_a_trigger_off(self, erika, acme):
        NotificationRule.objects.create(org=acme, trigger="scheduled", enabled=False)

        assert notification_prepare.call(erika.pk, "scheduled") == "duplicate_or_off"
        assert not Message.objects.exists()

    def test_an_organization_edits_the_text(self, erika, acme):
        NotificationRule.objects.create(org=acme, trigger="delivered", sms_template="Done, {{ customer }}! {{ link }}")

        notification_prepare.call(erika.pk, "delivered")

        assert Message.objects.get().body.startswith("Done, Erika! http://")

    def test_a_customer_with_only_an_email_gets_an_email(self, erika, settings):
        settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
        erika.customer_phone = ""
        erika.save()

        notification_prepare.call(erika.pk, "delivered")

        (email,) = mail.outbox
        assert email.to == ["erika@example.com"] and email.subject == "Your order A-1001 was delivered"
        assert Message.objects.get().status == "sent"


class TestOncePerTriggerPerOrder:
    def test_a_second_request_for_the_same_trigger_sends_nothing(self, erika):
        notification_prepare.call(erika.pk, "out_for_delivery")

        assert notification_prepare.call(erika.pk, "out_for_delivery") == "duplicate_or_off"
        assert Message.objects.count() == 1

    def test_the_database_refuses_a_second_row_even_if_two_workers_race(self, erika, monkeypatch):
        message_prepare(order_id=erika.pk, trigger="delivered")
        # The other worker checked before this one wrote: only the constraint stands between.
        monkeypatch.setattr(Message.objects, "filter", Message.objects.none().filter, raising=False)

        assert message_prepare(order_id=erika.pk, trigger="delivered") is None
        assert Message.objects.model._default_manager.count() == 1

    def test_two_workers_sending_the_same_message_send_it_once(self, erika):
        message = message_prepare(order_id=erika.pk, trigger="delivered")
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING)  # the first worker's claim

        assert message_send(message_id=message.pk) == "skipped"


class TestQuietHours:
    @pytest.fixture(autouse=True)
    def nights(self, acme):
        # 21:00-09:30 Berlin; the clock says 10:00 Berlin, so move it to 07:00 Berlin (06:00 UTC).
        NotificationSettings.objects.create(org=acme, quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 30))

    def test_a_message_in_quiet_hours_waits_for_them_to_end(self, erika, clock):
        clock.move_to(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))

        assert notification_prepare.call(erika.pk, "scheduled") == "not_due"

        message = Message.objects.get()
        assert message.status == "pending" and message.next_attempt_at == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
        assert DBTaskResult.objects.filter(task_path="apps.notifications.tasks.notification_send").get().run_after == \
            message.next_attempt_at
        clock.move_to(message.next_attempt_at)
        assert message_send(message_id=message.pk) == "sent"

    def test_quiet_hours_spanning_midnight_hold_a_late_message_until_morning(self, erika, clock):
        clock.move_to(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))  # 23:00 Berlin

        message = message_prepare(order_id=erika.pk, trigger="delivered")

        assert message.next_attempt_at == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)

    def test_a_time_critical_message_in_quiet_hours_is_dropped_not_delayed(self, erika, clock):
        clock.move_to(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))

        message = message_prepare(order_id=erika.pk, trigger="arriving_soon")

        assert message.status == "suppressed" and "quiet hours" in message.status_detail

    def test_outside_quiet_hours_messages_go_at_once(self, erika):
        assert notification_prepare.call(erika.pk, "scheduled") == "sent"


class TestOptOut:
    def test_an_opted_out_number_gets_nothing(self, erika, acme):
        opt_out_record(org_id=acme.pk, channel="sms", address="+4915100000001", source="test")

        message = message_prepare(order_id=erika.pk, trigger="scheduled")

        assert message.status == "suppressed" and "opted out" in message.status_detail
        assert message_send(message_id=message.pk) == "skipped"

    def test_stop_by_sms_opts_out_through_the_signed_twilio_callback(self, erika, acme, anonymous, settings):
        settings.TWILIO_AUTH_TOKEN = "twilio-secret"
        notification_prepare.call(erika.pk, "scheduled")
        held = message_prepare(order_id=erika.pk, trigger="delivered")
        url = "http://testserver/api/v1/notifications/twilio/inbound/"
        form = {"From": "+4915100000001", "To": "+4930000000", "Body": "Stop ", "MessageSid": "SM1"}

        response = anonymous.post(url, urlencode(form), content_type=FORM, HTTP_X_TWILIO_SIGNATURE=twilio_signature(
            auth_token="twilio-secret", url=url, params=form))

        assert response.status_code == 204
        assert OptOut.objects.filter(org=acme, channel="sms", address="+4915100000001").exists()
        held.refresh_from_db()
        assert held.status == "suppressed"  # pending messages stop too

    def test_a_callback_without_a_valid_signature_is_refused(self, anonymous, settings, erika):
        settings.TWILIO_AUTH_TOKEN = "twilio-secret"

        response = anonymous.post("/api/v1/notifications/twilio/inbound/",
                                  urlencode({"From": "+4915100000001", "Body": "STOP"}), content_type=FORM,
                                  HTTP_X_TWILIO_SIGNATURE="forged")

        assert response.status_code == 401 and not OptOut.objects.exists()

    def test_delivery_reports_move_the_status_forward_and_are_logged(self, erika, anonymous, settings):
        settings.TWILIO_AUTH_TOKEN = "twilio-secret"
        message = message_prepare(order_id=erika.pk, trigger="scheduled")
        Message.objects.filter(pk=message.pk).update(status="sent", provider_id="SM42")
        url = "http://testserver/api/v1/notifications/twilio/status/"
        form = {"MessageSid": "SM42", "MessageStatus": "delivered"}

        response = anonymous.post(url, urlencode(form), content_type=FORM, HTTP_X_TWILIO_SIGNATURE=twilio_signature(
            auth_token="twilio-secret", url=url, params=form))

        assert response.status_code == 204

        message.refresh_from_db()
        assert message.status == "delivered" and message.delivered_at == MORNING
        assert [entry.status for entry in message.log.all()][-1] == "delivered"


class TestTwilio:
    def test_the_request_is_twilios_create_message_call(self):
        url, form = twilio_request(account_sid="AC1", sender="+4930000000", to="+4915100000001", body="Hi",
                                   status_callback="https://lm.example/cb")

        assert url == "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
        assert form == {"To": "+4915100000001", "Body": "Hi", "From": "+4930000000", "StatusCallback": "https://lm.example/cb"}
        assert "MessagingServiceSid" in twilio_request(account_sid="AC1", sender="MG9", to="x", body="", status_callback="")[1]

    def test_twilios_answers_are_parsed(self):
        accepted = twilio_parse(201, json.dumps({"sid": "SM123", "status": "queued"}).encode())
        assert (accepted.provider_id, accepted.delivered) == ("SM123", False)
        with pytest.raises(TransientError):
            twilio_parse(503, b"")
        with pytest.raises(TransientError):
            twilio_parse(429, b'{"code": 20429, "message": "Too Many Requests"}')
        with pytest.raises(PermanentError, match="21211"):
            twilio_parse(400, b'{"code": 21211, "message": "Invalid To Phone Number"}')

    def test_the_signature_matches_twilios_own_test_vector(self):
        # From twilio-ruby's spec/util/request_validator_spec.rb ("a Twilio Voice request").
        params = {"ToState": "California", "CalledState": "California", "Direction": "inbound", "FromState": "CA",
                  "AccountSid": "ACba8bc05eacf94afdae398e642c9cc32d", "Caller": "+14153595711", "CallerZip": "94108",
                  "CallerCountry": "US", "From": "+14153595711", "FromCity": "SAN FRANCISCO",
                  "CallerCity": "SAN FRANCISCO", "To": "+14157669926", "FromZip": "94108", "FromCountry": "US",
                  "ToCity": "", "CallStatus": "ringing", "CalledCity": "", "CallerState": "CA", "CalledZip": "",
                  "ToZip": "", "ToCountry": "US", "CallSid": "CA136d09cd59a3c0ec8dbff44da5c03f31",
                  "CalledCountry": "US", "Called": "+14157669926", "ApiVersion": "2010-04-01",
                  "ApplicationSid": "AP44efecad51364e80b133bb7c07eb8204"}

        assert twilio_signature(auth_token="2bd9e9638872de601313dc77410d3b23",
                                url="http://twiliotests.heroku.com/validate/voice",
                                params=params) == "oVb2kXoVy8GEfwBDjR8bk/ZZ6eA="

    def test_an_outage_delays_the_message_and_the_retry_sends_it_once(self, erika, settings, monkeypatch, clock):
        fake = FakeTwilio((503, b""), (503, b""), (201, b'{"sid": "SM9", "status": "queued"}'))
        sms = TwilioSms(account_sid="AC1", auth_token="t", sender="+4930000000", transport=fake)
        monkeypatch.setattr("apps.notifications.services.backend", lambda channel: sms)
        message = message_prepare(order_id=erika.pk, trigger="scheduled")

        assert message_send(message_id=message.pk) == "retry"
        message.refresh_from_db()
        assert (message.status, message.next_attempt_at) == ("retry", MORNING + timedelta(seconds=30))
        assert message_send(message_id=message.pk) == "not_due"  # a task woken early does nothing
        clock.shift(timedelta(seconds=30))
        assert message_send(message_id=message.pk) == "retry"
        message.refresh_from_db()
        assert message.next_attempt_at == MORNING + timedelta(seconds=90)  # the backoff doubles
        clock.shift(timedelta(seconds=60))
        assert message_send(message_id=message.pk) == "sent"
        assert message_send(message_id=message.pk) == "skipped"

        message.refresh_from_db()
        assert (message.status, message.provider_id, message.attempts) == ("sent", "SM9", 3)
        assert len(fake.calls) == 3
        assert [e.status for e in message.log.all()] == ["pending", "retry", "retry", "sent"]

    def test_a_provider_down_for_good_fails_the_message_after_the_last_attempt(self, erika, settings, monkeypatch, clock):
        settings.NOTIFY_MAX_ATTEMPTS = 2
        sms = TwilioSms(account_sid="AC1", auth_token="t", sender="+49", transport=FakeTwilio(TransientError("down")))
        monkeypatch.setattr("apps.notifications.services.backend", lambda channel: sms)
        message = message_prepare(order_id=erika.pk, trigger="scheduled")

        message_send(message_id=message.pk)
        clock.shift(timedelta(minutes=5))

        assert message_send(message_id=message.pk) == "failed"

    def test_an_invalid_number_fails_at_once(self, erika, monkeypatch):
        sms = TwilioSms(account_sid="AC1", auth_token="t", sender="+49",
                        transport=FakeTwilio((400, b'{"code": 21211, "message": "Invalid"}')))
        monkeypatch.setattr("apps.notifications.services.backend", lambda channel: sms)
        message = message_prepare(order_id=erika.pk, trigger="scheduled")

        assert message_send(message_id=message.pk) == "failed"


class TestEmail:
    def test_the_email_backend_sends_through_django(self, settings):
        from apps.notifications.channels.email import EmailChannel

        settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
        EmailChannel().send(Outbound(message_id=7, recipient="erika@example.com", body="Hello", subject="Hi"))

        assert mail.outbox[0].extra_headers["X-Lastmile-Message"] == "7"

    def test_a_mail_server_outage_is_transient(self, settings):
        from apps.notifications.channels.email import EmailChannel

        settings.MAILERS = {"default": {"BACKEND": "tests.notifications.fake_email.DownBackend"}}

        with pytest.raises(TransientError):
            EmailChannel().send(Outbound(message_id=7, recipient="erika@example.com", body="Hello", subject="Hi"))


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = {201: "Created", 410: "Gone", 503: "Service Unavailable"}.get(status, "")
        self.text = ""
        self.headers = {"Location": "https://push.example/m/1"}


class FakeSession:
    """pywebpush's one seam: the requests session it posts with."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.posts: list[dict] = []

    def post(self, url, data=None, headers=None, timeout=None, **kwargs):
        self.posts.append({"url": url, "data": data, "headers": headers})
        return FakeResponse(self.status)


class TestWebPush:
    @pytest.fixture
    def keys(self):
        import base64

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from py_vapid import Vapid02

        vapid = Vapid02()
        vapid.generate_keys()
        browser = ec.generate_private_key(ec.SECP256R1())
        p256dh = base64.urlsafe_b64encode(browser.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).decode().rstrip("=")
        private = vapid.private_pem().decode()
        return private, p256dh, base64.urlsafe_b64encode(b"0123456789abcdef").decode().rstrip("=")

    def _send(self, keys, status):
        from apps.notifications.channels.push import WebPush

        private, p256dh, auth = keys
        session = FakeSession(status)
        push = WebPush(private_key=private, subject="mailto:ops@acme.example", session=session)
        result = push.send(Outbound(message_id=1, recipient="https://push.example/sub/abc", body="On its way",
                                    extra={"p256dh": p256dh, "auth": auth}))
        return result, session

    def test_a_push_is_encrypted_and_signed_with_vapid(self, keys):
        result, session = self._send(keys, 201)

        (post,) = session.posts
        assert post["url"] == "https://push.example/sub/abc"
        assert post["headers"]["content-encoding"] == "aes128gcm"
        assert post["headers"]["authorization"].startswith("vapid t=")
        assert b"On its way" not in post["data"]  # encrypted for the browser
        assert result.provider_id == "https://push.example/m/1"

    def test_a_gone_subscription_is_permanent_and_a_busy_service_transient(self, keys):
        with pytest.raises(PermanentError):
            self._send(keys, 410)
        with pytest.raises(TransientError):
            self._send(keys, 503)

    def test_a_customer_who_opted_in_on_the_page_gets_push_instead_of_sms(self, erika, anonymous, keys):
        from apps.tracking.services import tracking_token_issue

        token = tracking_token_issue(order=erika).token
        response = anonymous.post(f"/api/v1/track/{token}/push/", {
            "endpoint": "https://push.example/sub/abc", "expirationTime": None,
            "keys": {"p256dh": keys[1], "auth": keys[2]}}, format="json")

        assert response.status_code == 201
        message = message_prepare(order_id=erika.pk, trigger="out_for_delivery")
        assert (message.channel, message.recipient) == ("push", "https://push.example/sub/abc")

    def test_a_gone_subscription_is_not_used_again(self, erika, monkeypatch, keys):
        push_subscribe(order=erika, endpoint="https://push.example/sub/abc", p256dh=keys[1], auth=keys[2])

        class Gone:
            def send(self, outbound):
                raise PermanentError("subscription gone (410)")

        monkeypatch.setattr("apps.notifications.services.backend", lambda channel: Gone())
        message_send(message_id=message_prepare(order_id=erika.pk, trigger="scheduled").pk)

        assert PushSubscription.objects.get().gone_at is not None
        assert message_prepare(order_id=erika.pk, trigger="delivered").channel == "sms"


class TestOnTheOrder:
    def test_dave_sees_every_message_and_its_log_on_the_order(self, erika, as_dave):
        notification_prepare.call(erika.pk, "scheduled")

        (message,) = as_dave.get(f"/api/v1/orders/{erika.pk}/messages/").json()

        assert (message["trigger"], message["channel"], message["status"]) == ("scheduled", "sms", "delivered")
        assert [entry["status"] for entry in message["log"]] == ["pending", "delivered"]

    def test_carol_gets_a_404_for_acmes_order(self, erika, as_carol):
        response = as_carol.get(f"/api/v1/orders/{erika.pk}/messages/")

        assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_arriving_soon_is_requested_once_from_the_eta_engine(route, erika, acme, bob, clock,
                                                               django_capture_on_commit_callbacks):
    from apps.eta import live

    actor = system_actor(acme)
    with django_capture_on_commit_callbacks(execute=True):
        route_publish(actor=actor, route=route)
        route_start(actor=actor, route=route)
    live.tracker.reset()
    for seconds in (0, 5):
        live.observe(driver_id=bob.pk, lat=52.53, lng=13.38, at=(MORNING + timedelta(seconds=seconds)).timestamp())
        live.flush()

    assert queued("arriving_soon") == [[erika.pk, "arriving_soon"]]


class TestSweep:
    def test_a_message_whose_worker_died_mid_send_is_sent_again_on_a_channel_that_keeps_one_copy(self, erika, clock):
        from apps.notifications.services import messages_sweep

        message = message_prepare(order_id=erika.pk, trigger="scheduled")
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING)  # and then the worker died
        clock.shift(timedelta(minutes=11))

        assert messages_sweep() == {"stuck": 1, "requeued": 1}
        assert message_send(message_id=message.pk) == "sent"  # the log backend: a second line texts nobody
        log = list(message.log.values_list("status", "detail"))
        assert [status for status, _ in log] == ["pending", "unconfirmed", "sending", "delivered"]
        assert "mid-send" in log[1][1] and "sending again" in log[2][1]

    def test_a_message_whose_job_was_lost_is_queued_again_and_sent_once(self, erika, clock):
        from apps.notifications.services import messages_sweep

        message = message_prepare(order_id=erika.pk, trigger="scheduled")
        clock.shift(timedelta(minutes=11))

        assert messages_sweep()["requeued"] == 1
        assert DBTaskResult.objects.filter(task_path="apps.notifications.tasks.notification_send").count() == 1
        assert [message_send(message_id=message.pk) for _ in range(2)] == ["sent", "skipped"]

    def test_a_recent_message_is_left_alone(self, erika):
        from apps.notifications.services import messages_sweep

        message_prepare(order_id=erika.pk, trigger="scheduled")

        assert messages_sweep() == {"stuck": 0, "requeued": 0}
