"""The demo's past: finished delivery days before today, worked through the driver API.

A demo that starts on today alone shows an empty reports page and no ETA accuracy.
So before today's routes, the demo plans each of the previous working days the way
it plans today (same orders generator, same dispatcher services) and then lets every
driver work the whole route through ``driver_action_apply``, the path the driver app
uses: arrivals and completions carry the device time of the simulated day, proof of
delivery is captured as the order requires (a drawn signature, a door photo, the
PIN), and some visits fail for the usual reasons.

What is simulated is the street, not the figures: drive times are the planner's
estimate times a traffic factor drawn per leg, service takes what the parcels need
give or take, and the ETA a customer was shown when the driver set off is what the
planner's travel model predicted for that leg. Reports and ETA accuracy are then
computed from these records by the ordinary code.

Past customers carry no phone or e-mail address (as after a retention purge), so the
history sends no notifications.
"""

from __future__ import annotations

import io
import math
import random
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from PIL import Image, ImageDraw

from apps.accounts.actor import Actor, system_actor
from apps.accounts.models import Organization, Role
from apps.accounts.roles import ROLE_SCOPES
from apps.eta.models import StopPrediction
from apps.pod.inputs import DriverActionIn, PodIn
from apps.pod.models import MediaKind
from apps.pod.requirements import delivery_pin, requirements_for
from apps.pod.services import driver_action_apply, media_upload

from . import demo_data as data
from . import timing
from .models import Driver, FailureReason, Hub, Order, Route, Stop, Vehicle

# Share of visits that fail, and why (weights).
FAILURE_RATE = 0.06
FAILURE_REASONS = [
    (FailureReason.RECIPIENT_ABSENT, 60, "Nobody answered; card left in the letterbox."),
    (FailureReason.ACCESS_DENIED, 15, "Courtyard gate locked, no code given."),
    (FailureReason.ADDRESS_NOT_FOUND, 12, "House number not on the street."),
    (FailureReason.REFUSED, 8, "Customer refused the parcel."),
    (FailureReason.DAMAGED, 5, "Box crushed in transit; taken back to the hub."),
]
# Leg time = the planner's estimate x lognormal(mu, sigma): Berlin traffic makes a
# leg about 8 % slower than planned on average, with a long tail.
TRAFFIC_MU, TRAFFIC_SIGMA = 0.08, 0.22


@dataclass(frozen=True)
class HistorySummary:
    days: int
    routes: int
    attempts: int
    failed: int


def history_days(today: date, count: int) -> list[date]:
    """The ``count`` working days (Monday to Saturday) before ``today``, oldest first."""
    days: list[date] = []
    day = today
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() != 6:
            days.append(day)
    return sorted(days)


def demo_history_day(*, org: Organization, hub: Hub, vehicles: Sequence[Vehicle], drivers: Sequence[Driver],
                     dispatcher: Actor, day: date, rng: random.Random) -> tuple[int, int, int]:
    """Plan ``day`` like today and work every route to the end. Returns (routes, attempts, failed)."""
    from .demo import demo_orders, plan_routes
    from .services.orders import order_bulk_create

    inputs = [
        order.model_copy(update={"external_id": f"DEMO-{day:%Y%m%d}-{i + 1:04d}", "customer_phone": "",
                                 "customer_email": ""})
        for i, order in enumerate(demo_orders(day=day, rng=rng)[:data.PLANNED_COUNT])
    ]
    order_bulk_create(actor=system_actor(org), orders=inputs)
    pool = list(Order.objects.filter(org=org, external_id__in=[o.external_id for o in inputs]))
    planned = plan_routes(hub=hub, vehicles=vehicles, drivers=drivers, dispatcher=dispatcher, day=day, orders=pool)
    attempts = failed = 0
    for route in planned:
        a, f = _work(route, hub=hub, rng=rng)
        attempts, failed = attempts + a, failed + f
    return len(planned), attempts, failed


def _work(route: Route, *, hub: Hub, rng: random.Random) -> tuple[int, int]:
    """The driver works the whole route: leave the hub, visit each stop, come back."""
    driver = Actor(org=route.org, scopes=ROLE_SCOPES[Role.DRIVER], user_id=route.driver.user_id, role=Role.DRIVER,
                   driver_id=route.driver_id)
    tz = zoneinfo.ZoneInfo(hub.timezone)
    shift_start = route.driver.shift_start
    clock = datetime.combine(route.date, shift_start, tzinfo=tz) + timedelta(minutes=rng.uniform(5, 25))
    started = clock
    here = (hub.lat, hub.lng)
    predictions: list[StopPrediction] = []
    failed = 0
    todo = list(route.stops.select_related("order").order_by("sequence"))
    for stop in todo:
        order = stop.order
        departed = clock
        estimate = timing.travel_seconds(*here, order.lat, order.lng)
        predicted = departed + timedelta(seconds=estimate)
        clock += timedelta(seconds=estimate * rng.lognormvariate(TRAFFIC_MU, TRAFFIC_SIGMA))
        if order.window_start is not None:
            # A driver early for a window waits round the corner and rings when it opens.
            predicted, clock = max(predicted, order.window_start), max(clock, order.window_start)
        _act(driver, stop, "arrive", at=clock)
        clock += timedelta(seconds=order.service_time_s * rng.uniform(0.7, 1.5))
        if rng.random() < FAILURE_RATE:
            reason, _, notes = rng.choices(FAILURE_REASONS, weights=[w for _, w, _ in FAILURE_REASONS])[0]
            _act(driver, stop, "fail", at=clock, reason=reason, notes=notes)
            failed += 1
        else:
            notes, pod = _proof(driver, order, rng)
            _act(driver, stop, "complete", at=clock, pod=pod, notes=notes)
        predictions.append(StopPrediction(stop=stop, org=route.org, route=route, first_eta=stop.planned_arrival,
                                          first_eta_at=started, departure_eta=predicted, departed_at=departed))
        here = (order.lat, order.lng)
    back = clock + timedelta(seconds=timing.travel_seconds(*here, hub.lat, hub.lng))
    # The route services stamp the server's clock on the route itself; this is the past.
    Route.objects.filter(pk=route.pk).update(started_at=started, completed_at=back)
    # What the ETA engine would have kept (docs/eta.md): the first ETA and the one
    # current when the driver set off towards each stop.
    StopPrediction.objects.filter(stop__in=[p.stop_id for p in predictions]).delete()
    StopPrediction.objects.bulk_create(predictions)
    return len(todo), failed


def _act(driver: Actor, stop: Stop, kind: str, *, at: datetime, **fields) -> None:
    driver_action_apply(actor=driver, data=DriverActionIn(
        id=uuid.uuid4(), type=kind, stop=stop.pk, route=stop.route_id, order=stop.order_id, device_time=at, **fields))


def _proof(driver: Actor, order: Order, rng: random.Random) -> tuple[str, PodIn]:
    """What the driver captures: whatever the order requires, where the driver stands."""
    required = requirements_for(order)
    photos, signature = [], None
    if required.min_photos:
        for n in range(required.min_photos):
            media, _ = media_upload(actor=driver, kind=MediaKind.PHOTO, data=door_photo(f"{order.external_id}/{n}", rng))
            photos.append(media.sha256)
    if required.signature:
        media, _ = media_upload(actor=driver, kind=MediaKind.SIGNATURE, data=signature_png(order.external_id, rng))
        signature = media.sha256
    first_name = order.customer_name.split(" ")[0]
    notes = "Handed over at the door." if required.notes else ""
    return notes, PodIn(
        photos=photos, signature=signature, barcode=order.external_id if required.barcode else "",
        recipient_name=first_name if required.signature or required.recipient_name else "",
        pin=delivery_pin(order) if required.pin else "", age_verified=bool(required.min_age),
        # A phone fix at the door: a few metres off, now and then a block off.
        lat=round(order.lat + rng.gauss(0, 0.00006), 6), lng=round(order.lng + rng.gauss(0, 0.0001), 6),
        accuracy_m=round(rng.uniform(4, 25), 1),
    )


def door_photo(label: str, rng: random.Random) -> bytes:
    """A small JPEG of a parcel at a door, different for every label."""
    image = Image.new("RGB", (480, 360), tuple(rng.randint(150, 220) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    draw.rectangle((150, 40, 330, 360), fill=tuple(rng.randint(40, 120) for _ in range(3)))  # the door
    draw.ellipse((300, 200, 312, 212), fill=(200, 180, 60))  # its handle
    draw.rectangle((190, 280, 300, 350), fill=(176, 132, 80), outline=(120, 90, 50), width=3)  # the parcel
    draw.text((10, 10), label, fill=(30, 30, 30))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def signature_png(label: str, rng: random.Random) -> bytes:
    """A hand-drawn-looking signature: a wobbly stroke, different for every label."""
    image = Image.new("RGBA", (360, 120), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    phase, points = rng.uniform(0, math.tau), []
    for i in range(80):
        x = 20 + i * 4
        points.append((x, 60 + 28 * math.sin(i / 5 + phase) * math.cos(i / 13) + rng.uniform(-3, 3)))
    draw.line(points, fill=(20, 30, 90, 255), width=3, joint="curve")
    draw.text((20, 100), label, fill=(20, 30, 90, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
