"""Background jobs: thin wrappers around the services."""

from __future__ import annotations

from django.tasks import task


@task(queue_name="default")
def process_inbound(message_id: int) -> str:
    from .services.inbound import inbound_process

    return inbound_process(message_id=message_id).status
