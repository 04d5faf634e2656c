"""Background jobs (django.tasks, queue "notifications"): thin wrappers over services."""

from __future__ import annotations

from django.tasks import task
from django.utils import timezone

from apps.common.jobs import job_is_rerun

from .models import Message, MessageStatus
from .services import message_prepare, message_send


def _send_or_reschedule(message_id: int) -> str:
    outcome = message_send(message_id=message_id)
    if outcome in ("retry", "not_due"):
        due = Message.objects.filter(pk=message_id).values_list("next_attempt_at", flat=True).first()
        notification_send.using(run_after=due or timezone.now()).enqueue(message_id)
    return outcome


@task(queue_name="notifications")
def notification_prepare(order_id: int, trigger: str) -> str:
    """Decide, render and send the message a trigger calls for (once per order and trigger)."""
    message = message_prepare(order_id=order_id, trigger=trigger)
    if message is None and job_is_rerun():
        # This job's worker died after preparing the message: finish its send.
        message = Message.objects.filter(order_id=order_id, trigger=trigger).first()
    if message is None:
        return "duplicate_or_off"
    if message.status == MessageStatus.SENDING and job_is_rerun():
        return _send_or_reschedule(message.pk)
    if message.status != MessageStatus.PENDING:
        return message.status
    return _send_or_reschedule(message.pk)


@task(queue_name="notifications")
def notification_send(message_id: int) -> str:
    return _send_or_reschedule(message_id)
