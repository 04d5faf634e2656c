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


@task
def record_once_after_a_pause(org_id: int, pause_flag: str) -> int:
    """Pauses (long enough to be killed) while ``pause_flag`` exists, then records one
    ``hub.updated`` event unless an earlier run already did: the idempotent effect every
    real job has to have, since a job whose worker died runs again."""
    import os
    import time

    from django.db import transaction

    from apps.accounts.models import Organization
    from apps.events.models import Event
    from apps.events.services import event_record

    started = time.monotonic()
    while os.path.exists(pause_flag) and time.monotonic() - started < 120:
        time.sleep(0.05)
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=org_id)
        existing = Event.objects.filter(org=org, type="hub.updated", subject_id=4242).first()
        if existing:
            return existing.sequence
        return event_record(org=org, actor="system", type="hub.updated", subject_type="hub", subject_id=4242).sequence
