from __future__ import annotations

from django.db import models

from apps.accounts.models import Organization


class OrgEventCounter(models.Model):
    """The last sequence number handed out in an organization.

    Incrementing this row takes a row lock held until the writer commits, so
    sequence order is commit order: a reader who has seen sequence N can never
    later find a committed event below N. That is what makes ``?after=N`` and
    resync-after-gap safe.
    """

    org = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True, related_name="event_counter")
    last = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.org_id}: {self.last}"


class Event(models.Model):
    """Append-only: one row per thing that happened. Never updated, never deleted by the app."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    sequence = models.BigIntegerField()
    type = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=32)
    subject_id = models.CharField(max_length=64)
    actor = models.CharField(max_length=64, default="system")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["org", "sequence"]
        constraints = [models.UniqueConstraint(fields=["org", "sequence"], name="event_org_sequence_unique")]
        indexes = [
            models.Index(fields=["org", "subject_type", "subject_id", "sequence"], name="event_subject_idx"),
            models.Index(fields=["org", "type", "sequence"], name="event_type_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.type} {self.subject_type}:{self.subject_id}"
