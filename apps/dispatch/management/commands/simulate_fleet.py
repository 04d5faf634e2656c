"""``manage.py simulate_fleet``: the demo's drivers drive their routes.

Each driver is a real client of a running server (HTTP login, the JSON API, the
/ws/driver/ socket), so the console shows them moving exactly as it would show the PWA.
The simulation lives in apps/dispatch/simulation/; this command reads options and logs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from argparse import ArgumentTypeError
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.dispatch.demo_data import PASSWORD
from apps.dispatch.simulation.fleet import DEMO_DRIVERS, FleetOptions, FleetReport, run_fleet


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"expected YYYY-MM-DD such as 2026-11-23, got {value!r}") from None


def _usernames(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise ArgumentTypeError("expected usernames separated by commas, such as driver1,driver3")
    return names


async def _until_stopped(fleet: FleetOptions) -> FleetReport:
    """Run the fleet; SIGTERM (a script stopping its background jobs) stops it like Ctrl-C,
    so drivers close their sockets and the tally is logged."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run_fleet(fleet)


class Command(BaseCommand):
    help = ("Simulate the demo fleet against a running server: each driver logs in, drives today's route with "
            "GPS pings over the driver socket, and delivers or fails its stops.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server (default %(default)s).")
        parser.add_argument("--speedup", type=_positive, default=10.0,
                            help="Simulated seconds per wall-clock second (default %(default)g). Driving is held to "
                                 "10.1x so that the server shows every ping; stops and waiting go at the full speedup.")
        parser.add_argument("--ping-interval", type=_positive, default=3.0,
                            help="Wall-clock seconds between a driver's pings (default %(default)g).")
        parser.add_argument("--drivers", type=_usernames, default=None,
                            help="Usernames, comma-separated (default: driver1 to driver8, those with a route today).")
        parser.add_argument("--password", default=PASSWORD, help="The drivers' password (default: the demo's).")
        parser.add_argument("--seed", default="1", help="Seed for stop outcomes and GPS noise (default %(default)s).")
        parser.add_argument("--date", type=_day, default=None,
                            help="Work the routes of this day, YYYY-MM-DD (default: today in Berlin).")
        parser.add_argument("--once", action="store_true", help="Stop when every route is done.")
        parser.add_argument("--max-seconds", type=_positive, default=None, help="Stop after this many seconds.")
        parser.add_argument("--wait-for-server", type=_positive, default=60.0, metavar="SECONDS",
                            help="How long to wait for the server to come up (default %(default)g).")

    def handle(self, *args: Any, **options: Any) -> None:
        fleet = FleetOptions(url=options["url"], speedup=options["speedup"], ping_interval_s=options["ping_interval"],
                             drivers=options["drivers"] or DEMO_DRIVERS, password=options["password"],
                             seed=options["seed"], once=options["once"], max_seconds=options["max_seconds"],
                             day=options["date"], connect_wait_s=options["wait_for_server"])
        handler = logging.StreamHandler(self.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        log = logging.getLogger("apps.dispatch.simulation")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        try:
            report = asyncio.run(_until_stopped(fleet))
        except (KeyboardInterrupt, asyncio.CancelledError):
            return  # the fleet has logged its tally on the way out
        finally:
            log.removeHandler(handler)
            log.propagate = True
        if report.drivers and all(d.error for d in report.drivers):
            raise CommandError(f"No driver got going: {report.drivers[0].error}")
        if not report.active:
            self.stdout.write(f"None of {', '.join(fleet.drivers)} has a route to drive on that day. "
                              "Recreate today's demo with: manage.py seed_demo --reset")
