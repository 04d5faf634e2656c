"""Background jobs of the tracking app: thin wrappers around services."""

from django.tasks import task

from .services import location_prune


@task
def location_history_prune() -> int:
    """Delete location history past LOCATION_RETENTION_DAYS (periodic, see PERIODIC_JOBS)."""
    return location_prune()
