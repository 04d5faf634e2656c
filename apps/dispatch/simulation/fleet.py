"""Run simulated drivers side by side on one event loop and sum up what they did."""

from __future__ import annotations

import asyncio
import logging
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from apps.dispatch import demo_data
from apps.dispatch.timing import URBAN_SPEED_MPS

from .driver import DriverReport, DriverSettings, SimulatedDriver
from .movement import MAX_MAP_SPEED_MPS, SimClock, drive_speed_mps, map_speed_mps
from .noise import SERVER_FLAG_SPEED_MPS

logger = logging.getLogger(__name__)

DEMO_DRIVERS = tuple(username for username, *_ in demo_data.DRIVERS)


@dataclass(frozen=True)
class FleetOptions:
    url: str = "http://127.0.0.1:8000"
    speedup: float = 10.0
    ping_interval_s: float = 3.0
    drivers: Sequence[str] = DEMO_DRIVERS
    password: str = demo_data.PASSWORD
    seed: int | str = 1
    once: bool = False
    max_seconds: float | None = None
    day: date | None = None  # default: today where the demo is
    connect_wait_s: float = 60.0


@dataclass
class FleetReport:
    drivers: list[DriverReport] = field(default_factory=list)
    timed_out: bool = False

    @property
    def active(self) -> list[DriverReport]:
        return [d for d in self.drivers if d.name]

    def total(self, attribute: str) -> int:
        return sum(getattr(d, attribute) for d in self.drivers)

    def pings(self, attribute: str) -> int:
        return sum(getattr(d.pings, attribute) for d in self.drivers)


def demo_today() -> date:
    return datetime.now(zoneinfo.ZoneInfo(demo_data.TIMEZONE)).date()


async def run_fleet(options: FleetOptions) -> FleetReport:
    day = options.day or demo_today()
    clock = SimClock(options.speedup)
    logger.info("simulating %s against %s for %s: %gx speed, a ping every %g s%s", ", ".join(options.drivers),
                options.url, day, options.speedup, options.ping_interval_s,
                "" if options.max_seconds is None else f", for at most {options.max_seconds:g} s")
    if drive_speed_mps(options.speedup) < URBAN_SPEED_MPS:
        logger.info("at %gx vehicles would cross the map at %.0f m/s, and the server hides pings implying more than "
                    "%.0f m/s: they drive at %.1fx instead, and only stops run at %gx", options.speedup,
                    options.speedup * map_speed_mps(), SERVER_FLAG_SPEED_MPS, MAX_MAP_SPEED_MPS / map_speed_mps(),
                    options.speedup)
    drivers = [
        SimulatedDriver(DriverSettings(base_url=options.url, username=username, password=options.password, day=day,
                                       ping_interval_s=options.ping_interval_s, seed=options.seed, once=options.once,
                                       connect_wait_s=options.connect_wait_s), clock=clock)
        for username in options.drivers
    ]
    tasks = [asyncio.create_task(d.run(), name=d.settings.username) for d in drivers]
    report = FleetReport(drivers=[d.report for d in drivers])
    try:
        _, pending = await asyncio.wait(tasks, timeout=options.max_seconds)
        report.timed_out = bool(pending)
    finally:
        # Also on Ctrl-C: every driver closes its socket on the way out, then the tally.
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for driver, result in zip(drivers, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                driver.report.error = f"{type(result).__name__}: {result}"
                logger.error("%s: crashed", driver.label, exc_info=result)
        _summarize(report)
    return report


def _summarize(report: FleetReport) -> None:
    for d in report.drivers:
        if d.name or d.error:
            p = d.pings
            logger.info("%s %s: %d route(s) done, %d delivered, %d failed; pings %d sent, %d accepted, "
                        "%d flagged, %d rejected%s", d.username, d.name, d.routes_done, d.delivered, d.failed,
                        p.sent, p.accepted, p.flagged, p.rejected, f"; error: {d.error}" if d.error else "")
    logger.info("fleet%s: %d driver(s) on the road, %d route(s) done, %d stops delivered, %d failed; "
                "pings %d sent, %d accepted, %d flagged, %d rejected",
                " (time limit reached)" if report.timed_out else "", len(report.active),
                report.total("routes_done"), report.total("delivered"), report.total("failed"),
                report.pings("sent"), report.pings("accepted"), report.pings("flagged"), report.pings("rejected"))
