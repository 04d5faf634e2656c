from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Organization

from .models import Event


def event_list(*, org: Organization, after: int = 0, types: list[str] | None = None,
               subject_type: str | None = None, subject_id: str | None = None) -> QuerySet[Event]:
    qs = Event.objects.filter(org=org, sequence__gt=after).order_by("sequence")
    if types:
        qs = qs.filter(type__in=types)
    if subject_type:
        qs = qs.filter(subject_type=subject_type)
    if subject_id:
        qs = qs.filter(subject_id=subject_id)
    return qs


def event_last_sequence(*, org: Organization) -> int:
    from .models import OrgEventCounter

    return OrgEventCounter.objects.filter(org=org).values_list("last", flat=True).first() or 0
