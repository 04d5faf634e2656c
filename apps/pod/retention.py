"""POD media retention: photos and signatures are deleted from storage once they are
older than their organization's retention period (``PodSettings.media_retention_days``,
else ``settings.POD_MEDIA_RETENTION_DAYS``). The ``PodMedia`` rows stay, with their
SHA-256, size and dimensions, and so do the PODs that cite them: the record of what was
delivered and what the files were outlives the pixels.

Files go first and the row is marked after. A purge interrupted between the two leaves
a row whose files are gone, which the next run marks (deleting a missing file is
harmless); the other order could leave files that no run would ever look at again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from .models import PodMedia, PodSettings

logger = logging.getLogger(__name__)


def media_retention_days(*, org_id: int) -> int:
    own = PodSettings.objects.filter(org_id=org_id).values_list("media_retention_days", flat=True).first()
    return own or settings.POD_MEDIA_RETENTION_DAYS


def pod_media_purge(*, now: datetime | None = None) -> int:
    """Delete the files of every organization's media past its retention; return how
    many media were purged. Safe to run again at any time, and on several workers."""
    now = now or timezone.now()
    purged = 0
    org_ids = PodMedia.objects.filter(purged_at__isnull=True).values_list("org_id", flat=True).distinct()
    for org_id in sorted(set(org_ids)):
        cutoff = now - timedelta(days=media_retention_days(org_id=org_id))
        due = (PodMedia.objects.filter(org_id=org_id, purged_at__isnull=True, created_at__lt=cutoff)
               .only("pk", "original", "display", "thumb").order_by("pk"))
        for media in due.iterator(chunk_size=500):
            try:
                for name in (media.original, media.display, media.thumb):
                    if name:
                        default_storage.delete(name)
            except Exception:  # storage hiccup: the row stays unmarked, the next run tries again
                logger.warning("pod media %s: could not delete its files", media.pk, exc_info=True)
                continue
            if PodMedia.objects.filter(pk=media.pk, purged_at__isnull=True).update(purged_at=now):
                purged += 1
    if purged:
        logger.info("pod media purge: %d media past retention deleted from storage", purged)
    return purged
