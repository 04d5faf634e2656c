"""``manage.py seed_demo``: the Berlin demo organization, once.

Safe to run on every start: an existing demo is left alone unless ``--reset``, or
``--if-stale`` and it has no routes for the day (the start command uses that, so a
demo seeded yesterday becomes today's demo instead of an empty map).
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common.exceptions import DomainError
from apps.dispatch import demo
from apps.dispatch import demo_data as data


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"expected YYYY-MM-DD such as 2026-11-23, got {value!r}") from None


class Command(BaseCommand):
    help = "Create the demo organization in Berlin: a hub, 8 vehicles and drivers, 120 orders, 8 routes, logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=_day, default=None,
                            help="Day the orders and routes are for, YYYY-MM-DD (default: today in Berlin).")
        parser.add_argument("--history-days", type=int, default=data.HISTORY_DAYS,
                            help=f"Working days before the day to deliver in full first (default {data.HISTORY_DAYS}).")
        parser.add_argument("--reset", action="store_true",
                            help="Delete the demo organization and its logins, then create it again.")
        parser.add_argument("--if-stale", action="store_true",
                            help="Recreate the demo only if it has no routes for the day.")

    def handle(self, *args: Any, **options: Any) -> None:
        existing = demo.demo_find()
        day = options["date"] or demo.demo_today()
        stale = existing is not None and options["if_stale"] and not demo.demo_has_routes(org=existing, day=day)
        if existing is not None and not options["reset"] and not stale:
            self.stdout.write(f'The demo organization "{existing.name}" already exists; nothing to do '
                              "(use --reset to recreate it).")
            return
        try:
            if existing is None:
                summary = demo.demo_create(day=day, history_days=options["history_days"], progress=self._progress)
            else:
                summary = demo.demo_recreate(org=existing, day=day, history_days=options["history_days"],
                                             progress=self._progress)
                self.stdout.write(f'Deleted the demo organization "{existing.name}" and its logins.')
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self._report(summary)

    def _progress(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def _report(self, s: demo.DemoSummary) -> None:
        waiting = s.orders - s.planned
        lines = [
            self.style.SUCCESS(f'Created "{s.org.name}" (slug {s.org.slug}, {s.org.timezone}) for {s.day}.'),
            f"  hub       {s.hub.name}, {s.hub.address_line1}, {s.hub.postal_code} {s.hub.city}",
            f"  fleet     {s.vehicles} vehicles, {s.drivers} drivers",
            f"  orders    {s.orders}: {s.planned} on {s.routes} routes, {waiting} waiting to be planned",
            (f"  progress  {s.routes_started} routes under way: {s.stops_delivered} stops delivered, "
             f"{s.stops_failed} failed"),
            (f"  history   {s.history_days} working days before, delivered: {s.history_attempts} visits, "
             f"{s.history_failed} failed"),
            f"Logins (password {data.PASSWORD}):",
            *(f"  {username:<11} {role}" for username, role in s.logins),
        ]
        self.stdout.write("\n".join(lines))
