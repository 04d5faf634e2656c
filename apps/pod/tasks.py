"""Background jobs of proof of delivery: thin wrappers around the services."""

from __future__ import annotations

from django.tasks import task


@task
def pod_media_purge() -> int:
    """Delete POD photos and signatures past retention (periodic, see PERIODIC_JOBS)."""
    from .retention import pod_media_purge as purge

    return purge()
