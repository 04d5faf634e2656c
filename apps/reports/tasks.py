"""Background jobs of reports: thin wrappers around summary.py."""

from django.tasks import task

from .summary import summary_refresh_stale, summary_settle


@task
def reports_refresh() -> int:
    """Rebuild the stale days of the summary (queued after events commit)."""
    return summary_refresh_stale()


@task
def reports_settle() -> int:
    """Hourly: re-mark the last two days so late location backlogs reach the route figures."""
    marked = summary_settle()
    return marked + summary_refresh_stale()
