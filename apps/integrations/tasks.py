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


@task(queue_name="default")
def integrations_sweep() -> dict[str, int]:
    """Periodic (settings.PERIODIC_JOBS): re-queue inbound messages and webhook deliveries
    whose worker died before finishing them."""
    from .services.inbound import inbound_requeue_stuck
    from .services.outbound import webhooks_sweep

    return {"inbound": inbound_requeue_stuck(), "outbound": webhooks_sweep()}


@task(queue_name="default")
def reconcile_all() -> int:
    """Periodic: enqueue a reconciliation of every store connection with API credentials
    (Shopify and WooCommerce do not guarantee every webhook arrives)."""
    from .models import Connection, ConnectionKind

    connections = Connection.objects.filter(active=True, kind__in=[ConnectionKind.SHOPIFY, ConnectionKind.WOOCOMMERCE])
    ids = list(connections.exclude(api={}).values_list("pk", flat=True))
    for connection_id in ids:
        reconcile_connection.enqueue(connection_id)
    return len(ids)


@task(queue_name="default")
def inbound_retention() -> int:
    """Periodic: empty the raw body and headers of processed inbound messages past their
    retention period (personal data), keeping the audit record."""
    from .services.retention import inbound_purge_raw

    return inbound_purge_raw()
