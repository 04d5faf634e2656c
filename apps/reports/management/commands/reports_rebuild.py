"""Rebuild the reports summary for a range of days (after an upgrade, a restore, or to
check it): ``manage.py reports_rebuild --from 2026-01-01 --to 2026-12-31 [--org acme]``."""

from __future__ import annotations

import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Organization
from apps.reports.summary import summary_rebuild_day


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Rebuild the reports summary tables for a range of days."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--org", help="organization slug (default: every organization)")

    def handle(self, *args, date_from: str, date_to: str, org: str | None, **options):
        first, last = _day(date_from), _day(date_to)
        if last < first:
            raise CommandError("--to is before --from.")
        orgs = Organization.objects.all()
        if org:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"No organization {org!r}.")
        days = (last - first).days + 1
        for organization in orgs:
            started = time.monotonic()
            stats = routes = 0
            for i in range(days):
                s, r = summary_rebuild_day(org=organization, day=first + timedelta(days=i))
                stats, routes = stats + s, routes + r
                if days >= 20 and (i + 1) % max(1, days // 10) == 0:
                    self.stdout.write(f"  {organization.slug}: {i + 1}/{days} days")
            self.stdout.write(f"{organization.slug}: {days} days, {stats} stats rows, {routes} route rows "
                              f"in {time.monotonic() - started:.1f} s")
