"""Writes: prepare a message (decide, render, dedupe), send it through its channel with
retries, record what the provider says, and honour opt-outs.

Exactly-once, as far as a provider allows it:

- **One message per trigger per order**: ``Message`` has a unique (order, trigger); a
  second request finds the row and does nothing.
- **Requested in the transaction of the change** (``triggers.on_events`` runs inside
  ``events_record``): the task row commits with the event or not at all, so a crash after
  commit loses nothing, and nothing is sent for a change that rolled back.
- **Sent after commit, by a task**, never inside a request. A send first *claims* the
  message (``pending``/``retry`` → ``sending`` with a conditional UPDATE), so two workers
  never both send it; then it calls the provider outside any transaction.
- **A provider outage delays**: a ``TransientError`` puts the message back to ``retry``
  with exponential backoff (30 s doubling, capped at 30 min, for up to NOTIFY_MAX_ATTEMPTS
  attempts) and re-enqueues the task. A ``PermanentError`` fails it.
- **An unknown outcome never resends blindly**: a call that may have reached the provider
  (``OutcomeUnknown``: a read timeout, a dropped connection, a gateway timeout) or a worker
  that died mid-call leaves the message ``unconfirmed``; it is then settled by the
  provider's status callback (which carries our message id), a lookup at the provider, a
  resend only on channels that dedupe, or a person (``review``). docs/notifications.md.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template import Context, Template
from django.utils import timezone

from apps.common.jobs import job_is_rerun, rerun_claim_cutoff
from apps.dispatch.models import Order, Stop, StopState
from apps.tracking.models import TrackingToken
from apps.tracking.privacy import eta_window
from apps.tracking.selectors import tracking_settings

from .channels import Outbound, OutcomeUnknown, PermanentError, SendResult, TransientError, backend
from .models import (
    Channel,
    Message,
    MessageLog,
    MessageStatus,
    NotificationRule,
    NotificationSettings,
    OptOut,
    PushSubscription,
    Trigger,
)
from .triggers import DEFAULTS, FAILURE_TEXT, NEXT_STEP

logger = logging.getLogger(__name__)

# Messages whose news is stale by the end of the quiet hours are dropped, not delayed.
TIME_CRITICAL = {Trigger.ARRIVING_SOON, Trigger.ETA_CHANGED}
BACKOFF_S = 30
BACKOFF_MAX_S = 1800


def notification_settings(*, org_id: int) -> NotificationSettings:
    return NotificationSettings.objects.filter(org_id=org_id).first() or NotificationSettings(org_id=org_id)


def _log(message: Message, status: str, detail: str = "", *, at: datetime | None = None) -> None:
    MessageLog.objects.create(message=message, at=at or timezone.now(), status=status, detail=detail[:500])


def _quiet_until(rules: NotificationSettings, now: datetime, tz: zoneinfo.ZoneInfo) -> datetime | None:
    """The end of the quiet hours if ``now`` is inside them, else None. A period may span
    midnight (21:00-07:00)."""
    start, end = rules.quiet_hours_start, rules.quiet_hours_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(tz)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if (start < end or t < end) else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz)


def _choose(order: Order) -> tuple[str, str, dict[str, str]]:
    """The channel the customer chose: a browser they opted in on, else a text to their
    phone, else an email. ("", "", {}) when there is no way to reach them."""
    push = PushSubscription.objects.filter(order=order, gone_at__isnull=True).order_by("-id").first()
    if push is not None:
        return Channel.PUSH, push.endpoint, {"p256dh": push.p256dh, "auth": push.auth}
    if order.customer_phone:
        return Channel.SMS, order.customer_phone, {}
    if order.customer_email:
        return Channel.EMAIL, order.customer_email, {}
    return "", "", {}


def tracking_link(order: Order) -> str:
    """The customer's tracking link: a valid token of the order's, or a new one."""
    now = timezone.now()
    token = (TrackingToken.objects.filter(order=order, revoked_at__isnull=True)
             .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).order_by("-id").first())
    if token is None:
        from apps.tracking.services import tracking_token_issue

        token = tracking_token_issue(order=order)
    return f"{settings.LASTMILE_PUBLIC_URL.rstrip('/')}/track/{token.token}/"


def _context(order: Order, tz: zoneinfo.ZoneInfo, now: datetime) -> dict[str, Any]:
    def hm(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%H:%M") if value else ""

    stop = (Stop.objects.filter(order=order).exclude(state=StopState.CANCELLED).select_related("route__driver")
            .order_by("-id").first())
    window = (f"{order.window_start.astimezone(tz):%a %d %b}, {hm(order.window_start)}–{hm(order.window_end)}"
              if order.window_start and order.window_end else "the delivery day")
    eta = stop.eta if stop is not None and stop.is_open else None
    if eta is not None:
        start, end = eta_window(eta.timestamp(), now.timestamp())
        eta_text = f"{datetime.fromtimestamp(start, tz):%H:%M}–{datetime.fromtimestamp(end, tz):%H:%M}"
    else:
        eta_text = window
    away = 0
    if stop is not None and stop.route_id and stop.is_open:
        away = Stop.objects.filter(route_id=stop.route_id, sequence__lt=stop.sequence,
                                   state__in=(StopState.PENDING, StopState.ARRIVED)).count()
    driver = stop.route.driver if stop is not None and stop.route is not None else None
    rules = tracking_settings(org_id=order.org_id)
    return {
        "brand": rules.brand_name or order.org.name,
        "reference": order.reference or order.external_id,
        "customer": (order.customer_name.split() or [""])[0],
        "window": window,
        "eta": hm(eta),
        "eta_window": eta_text,
        "stops_away": away,
        "driver": driver.first_name if driver is not None else "Your driver",
        "link": tracking_link(order),
        "failure": FAILURE_TEXT.get(order.failure_reason, FAILURE_TEXT["other"]),
        "next_step": NEXT_STEP,
    }


def _render(source: str, context: dict[str, Any]) -> str:
    return Template(source).render(Context(context, autoescape=False)).strip()


def message_prepare(*, order_id: int, trigger: str, now: datetime | None = None) -> Message | None:
    """Decide and write the message for ``trigger`` on an order; None if the trigger is
    off for the organization or the message exists already. The row's status says what
    happens next: ``pending`` (send at ``next_attempt_at`` or now) or ``suppressed``."""
    now = now or timezone.now()
    order = Order.objects.select_related("org").filter(pk=order_id).first()
    if order is None:
        return None
    rule = NotificationRule.objects.filter(org_id=order.org_id, trigger=trigger).first()
    if rule is not None and not rule.enabled:
        return None
    if Message.objects.filter(order_id=order_id, trigger=trigger).exists():
        return None  # the common dedupe, without an IntegrityError in the log
    tz = zoneinfo.ZoneInfo(order.org.timezone)
    channel, recipient, _ = _choose(order)
    defaults = DEFAULTS[trigger]
    context = _context(order, tz, now)
    email = channel == Channel.EMAIL
    body = _render((rule.email_template if email else rule.sms_template) if rule else "", context) or _render(
        defaults["email" if email else "sms"], context)
    subject = _render((rule.email_subject if rule else "") or defaults["subject"], context)
    status, detail, due = MessageStatus.PENDING, "", now
    if not channel:
        status, detail = MessageStatus.SUPPRESSED, "no phone, email or push subscription for this customer"
    elif OptOut.objects.filter(org_id=order.org_id, channel=channel, address=recipient).exists():
        status, detail = MessageStatus.SUPPRESSED, f"the customer opted out of {channel}"
    elif (until := _quiet_until(notification_settings(org_id=order.org_id), now, tz)) is not None:
        if trigger in TIME_CRITICAL:
            status, detail = MessageStatus.SUPPRESSED, "quiet hours: the news would be stale by morning"
        else:
            due, detail = until, f"quiet hours: held until {until.isoformat()}"
    try:
        with transaction.atomic():
            message = Message.objects.create(
                org_id=order.org_id, order=order, trigger=trigger, channel=channel, recipient=recipient,
                subject=subject if email or channel == Channel.PUSH else "", body=body, status=status,
                status_detail=detail, next_attempt_at=due)
            _log(message, status, detail or f"to {channel} {recipient}", at=now)
    except IntegrityError:
        return None  # another worker prepared it first: at most one per trigger per order
    return message


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_S * 2 ** max(0, attempts - 1)))


SETTLE_AFTER_S = 120  # Twilio's status callback (or the lookup) after an unknown outcome
SETTLE_CHECKS = 6  # lookups, 2 min doubling to about an hour, before a person is asked
SENDABLE = (MessageStatus.PENDING, MessageStatus.RETRY, MessageStatus.UNCONFIRMED)


def _outbound(message: Message) -> Outbound:
    extra: dict[str, str] = {}
    if message.channel == Channel.PUSH:
        sub = PushSubscription.objects.filter(order_id=message.order_id, endpoint=message.recipient).first()
        extra = {"p256dh": sub.p256dh, "auth": sub.auth} if sub else {}
    return Outbound(message_id=message.pk, recipient=message.recipient, body=message.body, subject=message.subject,
                    extra=extra)


def message_send(*, message_id: int, now: datetime | None = None) -> str:
    """Send a due message once. Returns ``sent``, ``retry`` (the caller re-enqueues for
    ``next_attempt_at``), ``failed``, ``review``, ``not_due`` or ``skipped`` (not ours to
    send: already sent, being sent, or suppressed).

    The attempt is recorded before the provider is called (``sending``, ``attempted_at``,
    committed: no transaction is open here), so a worker that dies mid-call leaves a
    trace the sweep finds. An unknown outcome (``OutcomeUnknown``) is never retried
    blindly: the message waits as ``unconfirmed``, and its next run settles it first
    (``_settle``)."""
    now = now or timezone.now()
    row = Message.objects.filter(pk=message_id).values_list("status", "next_attempt_at", "updated_at").first()
    if row is None:
        return "skipped"
    prior, due, touched = row
    # This job's worker died mid-send (its job runs again, apps/common/jobs.py): whether
    # the provider took the message is unknown, so it is settled like any unknown outcome.
    orphaned = prior == MessageStatus.SENDING and job_is_rerun() and touched < rerun_claim_cutoff(now=now)
    if not orphaned and prior not in SENDABLE:
        return "skipped"
    if not orphaned and due is not None and due > now:
        return "not_due"
    # The claim: of two workers holding the same task, one moves the row on.
    if not Message.objects.filter(pk=message_id, status=prior, updated_at=touched).update(
            status=MessageStatus.SENDING, updated_at=now):
        return "skipped"
    message = Message.objects.get(pk=message_id)
    channel = backend(message.channel)
    outbound = _outbound(message)
    if prior == MessageStatus.UNCONFIRMED or orphaned:
        verdict = _settle(message, channel, outbound, now)
        if verdict is not None:
            return verdict
    message.attempts += 1
    Message.objects.filter(pk=message.pk).update(attempts=message.attempts, attempted_at=now, checks=0)
    try:
        result = channel.send(outbound)  # outside any transaction: network I/O
    except OutcomeUnknown as exc:
        due = now + timedelta(seconds=SETTLE_AFTER_S)
        if Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
                status=MessageStatus.UNCONFIRMED, next_attempt_at=due, status_detail=str(exc)[:500], updated_at=now):
            _log(message, MessageStatus.UNCONFIRMED,
                 f"attempt {message.attempts}: {exc}; the provider may have it: settling at {due.isoformat()}, "
                 "not resending blindly", at=now)
        return "retry"
    except TransientError as exc:
        if message.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
            _finish(message, MessageStatus.FAILED, f"gave up after {message.attempts} attempts: {exc}", now)
            return "failed"
        due = now + _backoff(message.attempts)
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.RETRY, next_attempt_at=due,
                                                     status_detail=str(exc)[:500], updated_at=now)
        _log(message, MessageStatus.RETRY, f"attempt {message.attempts}: {exc}; next at {due.isoformat()}", at=now)
        return "retry"
    except PermanentError as exc:
        if message.channel == Channel.PUSH:
            # The push service says the subscription ended (404/410) or the endpoint is
            # refused: drop it, later messages go by SMS or email.
            PushSubscription.objects.filter(order_id=message.order_id, endpoint=message.recipient).update(gone_at=now)
        _finish(message, MessageStatus.FAILED, str(exc), now)
        return "failed"
    _accepted(message, result, now)
    return "sent"


def _accepted(message: Message, result: SendResult, now: datetime, note: str = "") -> None:
    """The provider has the message. Only a message still ``sending`` moves: a delivery
    report that raced our call (the status callback) is never undone."""
    status = MessageStatus.DELIVERED if result.delivered else MessageStatus.SENT
    moved = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
        status=status, provider_id=result.provider_id[:100], sent_at=now,
        delivered_at=now if result.delivered else None, status_detail=result.detail[:500], updated_at=now)
    if not moved:
        Message.objects.filter(pk=message.pk, provider_id="").update(provider_id=result.provider_id[:100])
    _log(message, status, " ".join(filter(None, [note, result.detail or result.provider_id])), at=now)


def _settle(message: Message, channel: Any, outbound: Outbound, now: datetime) -> str | None:
    """An earlier attempt's outcome is unknown (the call timed out after sending, or its
    worker died mid-call). Caller claimed the message (``sending``). Returns None when
    sending again cannot make a second copy, else what happened:

    - a channel that dedupes (``resend_is_safe``: push Topic and tag, email Message-ID,
      the log) sends again;
    - a channel that can be asked (Twilio: ``lookup``) is asked for the text since the
      attempt began: found, the message is ``sent`` with the provider's id and not sent
      again; not found, it is sent again; no answer, asked again later (2 min doubling),
      and after SETTLE_CHECKS unanswered lookups left for a person (``review``);
    - any other channel goes to ``review`` at once."""
    since = message.attempted_at or message.created_at
    if channel.resend_is_safe:
        _log(message, MessageStatus.SENDING, "outcome of the last attempt unknown; this channel keeps one copy of a "
             "message sent twice: sending again", at=now)
        return None
    try:
        found = channel.lookup(outbound, since=since)
    except NotImplementedError:
        _finish(message, MessageStatus.REVIEW, "outcome unknown and the provider cannot be asked: check before "
                "sending again", now)
        return "review"
    except TransientError as exc:
        checks = message.checks + 1
        if checks >= SETTLE_CHECKS:
            Message.objects.filter(pk=message.pk).update(checks=checks)
            _finish(message, MessageStatus.REVIEW, f"outcome unknown after {checks} lookups ({exc}): check with the "
                    "provider before sending again", now)
            return "review"
        due = now + timedelta(seconds=SETTLE_AFTER_S * 2 ** (checks - 1))
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.UNCONFIRMED, checks=checks, next_attempt_at=due,
                                                     status_detail=str(exc)[:500], updated_at=now)
        _log(message, MessageStatus.UNCONFIRMED, f"lookup {checks} failed: {exc}; next at {due.isoformat()}", at=now)
        return "retry"
    if found is not None:
        _accepted(message, found, now, note="the provider has it from the unanswered attempt; not sent again:")
        return "sent"
    _log(message, MessageStatus.SENDING, "the provider has no such message since the unanswered attempt: sending "
         "again", at=now)
    return None


def message_review_settle(*, message_id: int, resend: bool, by: str) -> bool:
    """A person settled a message left for review (they checked the provider's console):
    ``resend`` queues it again, otherwise it is recorded as sent. Only a message still in
    ``review`` moves; returns whether it did."""
    from .tasks import notification_send

    now = timezone.now()
    if resend:
        moved = Message.objects.filter(pk=message_id, status=MessageStatus.REVIEW).update(
            status=MessageStatus.RETRY, next_attempt_at=now, checks=0, status_detail=f"send again ({by})", updated_at=now)
    else:
        moved = Message.objects.filter(pk=message_id, status=MessageStatus.REVIEW).update(
            status=MessageStatus.SENT, sent_at=now, status_detail=f"confirmed sent ({by})", updated_at=now)
    if moved:
        _log(Message(pk=message_id), MessageStatus.RETRY if resend else MessageStatus.SENT,
             f"{'send again' if resend else 'confirmed sent at the provider'}, by {by}", at=now)
        if resend:
            transaction.on_commit(lambda: notification_send.enqueue(message_id))
    return bool(moved)


def _finish(message: Message, status: str, detail: str, now: datetime) -> None:
    Message.objects.filter(pk=message.pk).update(status=status, status_detail=detail[:500], updated_at=now)
    _log(message, status, detail, at=now)


# Provider statuses (Twilio's MessageStatus) in our terms; others are only logged.
PROVIDER_STATUS = {"delivered": MessageStatus.DELIVERED, "undelivered": MessageStatus.FAILED,
                   "failed": MessageStatus.FAILED}
# Any report at all proves the provider took the message.
UNSETTLED = (MessageStatus.SENDING, MessageStatus.UNCONFIRMED, MessageStatus.REVIEW)


@transaction.atomic
def message_status_report(*, provider_id: str, provider_status: str, detail: str = "",
                          reference: int | None = None) -> Message | None:
    """A delivery report from the provider (e.g. Twilio's status callback). Logged always;
    the message's status moves only forward (a late "sent" never undoes "delivered").

    ``reference`` is our message id, carried in the callback URL: a report about a
    message whose create call went unanswered finds it, learns the provider's id, and
    settles the unknown outcome (the message is not sent again)."""
    if not provider_id:
        return None
    message = Message.objects.select_for_update().filter(provider_id=provider_id).first()
    if message is None and reference is not None:
        message = (Message.objects.select_for_update()
                   .filter(pk=reference, channel=Channel.SMS, provider_id="", status__in=UNSETTLED).first())
        if message is not None:
            message.provider_id = provider_id[:100]
        else:
            copy = Message.objects.filter(pk=reference, channel=Channel.SMS).exclude(provider_id="").first()
            if copy is not None:
                # A second copy exists after all (a lookup missed the first): on the record.
                _log(copy, copy.status, f"provider reports another copy {provider_id[:40]}: {provider_status}")
                return None
    if message is None:
        return None
    status = PROVIDER_STATUS.get(provider_status)
    now = timezone.now()
    if message.status in UNSETTLED:
        message.status, message.status_detail = status or MessageStatus.SENT, detail or provider_status
        message.sent_at = message.sent_at or now
    elif status is not None and message.status == MessageStatus.SENT:
        message.status, message.status_detail = status, detail or provider_status
    if message.status == MessageStatus.DELIVERED and message.delivered_at is None:
        message.delivered_at = now
    message.save(update_fields=["status", "status_detail", "provider_id", "sent_at", "delivered_at", "updated_at"])
    _log(message, status or message.status, f"provider: {provider_status} {detail}".strip(), at=now)
    return message


def opt_out_record(*, org_id: int, channel: str, address: str, source: str) -> bool:
    """Stop messaging ``address`` on ``channel`` for the organization (idempotent); pending
    messages to it are suppressed. Returns whether this was new."""
    _, created = OptOut.objects.get_or_create(org_id=org_id, channel=channel, address=address,
                                              defaults={"source": source})
    pending = Message.objects.filter(org_id=org_id, channel=channel, recipient=address,
                                     status__in=(MessageStatus.PENDING, MessageStatus.RETRY))
    for message in pending:
        if Message.objects.filter(pk=message.pk, status=message.status).update(
                status=MessageStatus.SUPPRESSED, status_detail="opted out"):
            _log(message, MessageStatus.SUPPRESSED, f"opted out ({source})")
    return created


def sms_inbound(*, sender: str, body: str) -> list[int]:
    """An SMS from a customer. "STOP" (and the carriers' synonyms) opts them out of every
    organization that has texted them; returns those organizations' ids."""
    if body.strip().upper() not in {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOPP"}:
        return []
    orgs = sorted(set(Message.objects.filter(channel=Channel.SMS, recipient=sender).values_list("org_id", flat=True)))
    for org_id in orgs:
        opt_out_record(org_id=org_id, channel=Channel.SMS, address=sender, source="sms:STOP")
    return orgs


def push_subscribe(*, order: Order, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
    sub, _ = PushSubscription.objects.update_or_create(
        order=order, endpoint=endpoint, defaults={"org_id": order.org_id, "p256dh": p256dh, "auth": auth,
                                                  "gone_at": None})
    return sub


def quiet_time(value: str) -> time:
    return time.fromisoformat(value)


def message_request_later(*, org_id: int, order_id: int, trigger: str) -> None:
    """Queue the preparation of a message. Inside a transaction (event triggers) the task
    row commits with the change; outside (ETA triggers) it is written at once."""
    from .tasks import notification_prepare

    notification_prepare.enqueue(order_id, str(trigger))


def messages_sweep(*, now: datetime | None = None, stuck_after: timedelta = timedelta(minutes=10)) -> dict[str, int]:
    """Repair what a crash can leave behind, so a message is delayed, not lost:

    - a message left ``sending`` for ``stuck_after`` (its worker died mid-send) may have
      reached the provider: it becomes ``unconfirmed``, and its job settles it before any
      resend (``_settle``: the provider is asked, or the channel dedupes, or a person);
    - a ``pending``/``retry``/``unconfirmed`` message overdue by ``stuck_after`` has lost
      its job (a pruned task row, a restored database): its job is queued again. The send
      claims the row, so a message with two jobs is still sent once.
    """
    from .tasks import notification_send

    now = now or timezone.now()
    stuck = list(Message.objects.filter(status=MessageStatus.SENDING, updated_at__lt=now - stuck_after)
                 .values_list("pk", flat=True))
    for pk in stuck:
        if Message.objects.filter(pk=pk, status=MessageStatus.SENDING).update(
                status=MessageStatus.UNCONFIRMED, next_attempt_at=now, updated_at=now):
            _log(Message(pk=pk), MessageStatus.UNCONFIRMED,
                 "the worker stopped mid-send; the provider may have it: settling before any resend", at=now)
    overdue = list(Message.objects.filter(status__in=SENDABLE,
                                          next_attempt_at__lt=now - stuck_after).values_list("pk", flat=True))
    for pk in [*stuck, *overdue]:
        notification_send.enqueue(pk)
    return {"stuck": len(stuck), "requeued": len(stuck) + len(overdue)}
