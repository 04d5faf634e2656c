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
  attempts) and re-enqueues the task. A ``PermanentError`` fails it. The one ambiguous case is
  a timeout after the provider accepted the message: it is retried (at least once), and
  said so in docs/notifications.md.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template import Context, Template
from django.utils import timezone

from apps.common.jobs import job_is_rerun, rerun_claim_cutoff
from apps.dispatch.models import Order, Stop, StopState
from apps.tracking.models import TrackingToken
from apps.tracking.privacy import eta_window
from apps.tracking.selectors import tracking_settings

from .channels import Outbound, PermanentError, TransientError, backend
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


def message_send(*, message_id: int, now: datetime | None = None) -> str:
    """Send a due message once. Returns ``sent``, ``retry`` (the caller re-enqueues for
    ``next_attempt_at``), ``failed``, ``not_due`` or ``skipped`` (not ours to send: already
    sent, being sent, or suppressed)."""
    now = now or timezone.now()
    claimable = Message.objects.filter(pk=message_id, status__in=(MessageStatus.PENDING, MessageStatus.RETRY))
    if job_is_rerun():  # this job's worker died mid-send, before the provider took the message
        claimable = Message.objects.filter(Q(status__in=(MessageStatus.PENDING, MessageStatus.RETRY)) | Q(
            status=MessageStatus.SENDING, updated_at__lt=rerun_claim_cutoff(now=now)), pk=message_id)
    if claimable.filter(next_attempt_at__gt=now).exists():
        return "not_due"
    # The claim: of two workers holding the same task, one moves the row on.
    if not claimable.update(status=MessageStatus.SENDING, attempts=F("attempts") + 1, updated_at=now):
        return "skipped"
    message = Message.objects.get(pk=message_id)
    extra: dict[str, str] = {}
    if message.channel == Channel.PUSH:
        sub = PushSubscription.objects.filter(order_id=message.order_id, endpoint=message.recipient).first()
        extra = {"p256dh": sub.p256dh, "auth": sub.auth} if sub else {}
    outbound = Outbound(message_id=message.pk, recipient=message.recipient, body=message.body,
                        subject=message.subject, extra=extra)
    try:
        result = backend(message.channel).send(outbound)  # outside any transaction: network I/O
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
            PushSubscription.objects.filter(order_id=message.order_id, endpoint=message.recipient).update(gone_at=now)
        _finish(message, MessageStatus.FAILED, str(exc), now)
        return "failed"
    status = MessageStatus.DELIVERED if result.delivered else MessageStatus.SENT
    Message.objects.filter(pk=message.pk).update(
        status=status, provider_id=result.provider_id[:100], sent_at=now,
        delivered_at=now if result.delivered else None, status_detail=result.detail[:500], updated_at=now)
    _log(message, status, result.detail or result.provider_id, at=now)
    return "sent"


def _finish(message: Message, status: str, detail: str, now: datetime) -> None:
    Message.objects.filter(pk=message.pk).update(status=status, status_detail=detail[:500], updated_at=now)
    _log(message, status, detail, at=now)


# Provider statuses (Twilio's MessageStatus) in our terms; others are only logged.
PROVIDER_STATUS = {"delivered": MessageStatus.DELIVERED, "undelivered": MessageStatus.FAILED,
                   "failed": MessageStatus.FAILED}


@transaction.atomic
def message_status_report(*, provider_id: str, provider_status: str, detail: str = "") -> Message | None:
    """A delivery report from the provider (e.g. Twilio's status callback). Logged always;
    the message's status moves only forward (a late "sent" never undoes "delivered")."""
    message = Message.objects.select_for_update().filter(provider_id=provider_id).first()
    if message is None or not provider_id:
        return None
    status = PROVIDER_STATUS.get(provider_status)
    now = timezone.now()
    if status is not None and message.status in (MessageStatus.SENT, MessageStatus.SENDING):
        message.status, message.status_detail = status, detail or provider_status
        if status == MessageStatus.DELIVERED:
            message.delivered_at = now
        message.save(update_fields=["status", "status_detail", "delivered_at", "updated_at"])
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

    - a message left ``sending`` for ``stuck_after`` (its worker died mid-send) goes back to
      ``retry``: it may have reached the provider, so it may arrive twice (the ambiguous case
      of docs/notifications.md), which is better than never;
    - a ``pending``/``retry`` message overdue by ``stuck_after`` has lost its job (a pruned
      task row, a restored database): its job is queued again. The send claims the row, so
      a message with two jobs is still sent once.
    """
    from .tasks import notification_send

    now = now or timezone.now()
    stuck = list(Message.objects.filter(status=MessageStatus.SENDING, updated_at__lt=now - stuck_after)
                 .values_list("pk", flat=True))
    for pk in stuck:
        if Message.objects.filter(pk=pk, status=MessageStatus.SENDING).update(
                status=MessageStatus.RETRY, next_attempt_at=now, updated_at=now):
            _log(Message(pk=pk), MessageStatus.RETRY, "the worker stopped mid-send; sending again", at=now)
    overdue = list(Message.objects.filter(status__in=(MessageStatus.PENDING, MessageStatus.RETRY),
                                          next_attempt_at__lt=now - stuck_after).values_list("pk", flat=True))
    for pk in [*stuck, *overdue]:
        notification_send.enqueue(pk)
    return {"stuck": len(stuck), "requeued": len(stuck) + len(overdue)}
