"""``manage.py prune_locations``: delete location history older than LOCATION_RETENTION_DAYS.

Run it daily (cron, a scheduler). Drivers' latest positions are kept.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.tracking.services import location_prune


class Command(BaseCommand):
    help = "Delete location pings older than LOCATION_RETENTION_DAYS (drivers' latest positions are kept)."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = location_prune()
        self.stdout.write(f"Deleted {deleted} location pings older than {settings.LOCATION_RETENTION_DAYS} days.")
