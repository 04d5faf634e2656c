"""Background jobs: thin wrappers around the services."""

from __future__ import annotations

from django.tasks import task


@task(queue_name="default")
def process_inbound(message_id: int) -> str:
    from .services.inbound import inbound_process

    return inbound_process(message_id=message_id).status


@task(queue_name="webhooks")
def deliver_webhook(delivery_id: int) -> str:
    from .services.outbound import delivery_attempt

    return delivery_attempt(delivery_id=delivery_id).status


@task(queue_name="default")
def reconcile_connection(connection_id: int) -> dict[str, int]:
    from .models import Connection
    from .services.reconcile import connection_reconcile

    result = connection_reconcile(connection=Connection.objects.get(pk=connection_id))
    return {"fetched": result.fetched, "queued": result.queued, "known": result.known}
