"""A task used only by the worker test: it writes a row the test can observe."""

from django.tasks import task


@task
def record_heartbeat(org_id: int) -> int:
    from django.db import transaction

    from apps.accounts.models import Organization
    from apps.events.services import event_record

    with transaction.atomic():
        org = Organization.objects.get(pk=org_id)
        return event_record(org=org, actor="system", type="hub.updated", subject_type="hub", subject_id=0).sequence
