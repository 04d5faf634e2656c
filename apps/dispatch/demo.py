"""Build the Berlin demo organization through the ordinary services.

Nothing here writes a lifecycle field: people are created as members, orders are
ingested in one batch, routes are created and published by the dispatcher, and
stops are worked by the drivers themselves. So every invariant the services keep
holds for the demo, and its event log reads like a real morning.

The data are random but seeded: the same day gives the same demo.
"""

from __future__ import annotations

import logging
import math
import random
import unicodedata
import zoneinfo
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from apps.accounts.actor import Actor, system_actor
from apps.accounts.models import Organization, Role
from apps.accounts.roles import ROLE_SCOPES
from apps.accounts.services import member_create, organization_create
from apps.common.exceptions import Conflict

from . import demo_data as data
from . import demo_history, timing
from .inputs import DriverIn, HubIn, ItemIn, OrderIn, RouteIn, VehicleIn
from .models import (
    Driver,
    FailureReason,
    GeocodeConfidence,
    Hub,
    Order,
    OrderState,
    PodRequirement,
    Priority,
    Route,
    Stop,
    StopOutcome,
    StopState,
    Vehicle,
    VehicleType,
)
from .services import fleet, routes, stops
from .services.orders import order_bulk_create

logger = logging.getLogger(__name__)

# A cargo bike serves the streets around the hub and no further.
BIKE_RADIUS_M = 3500
BIKE_MAX_STOPS = 12
# A stop whose window closes within this is visited next, before nearer ones.
# Over a year of seeded demo days, 30 minutes leaves 2 of 36,500 stops late.
CLOSING_SOON = timedelta(minutes=30)


@dataclass(frozen=True)
class DemoSummary:
    org: Organization
    day: date
    hub: Hub
    vehicles: int
    drivers: int
    orders: int
    planned: int
    routes: int
    routes_started: int
    stops_delivered: int
    stops_failed: int
    history_days: int
    history_attempts: int
    history_failed: int
    logins: list[tuple[str, str]]


def demo_today() -> date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(data.TIMEZONE)).date()


def demo_has_routes(*, org: Organization, day: date) -> bool:
    return Route.objects.filter(org=org, date=day).exists()


def demo_find() -> Organization | None:
    return Organization.objects.filter(slug=data.ORG_SLUG).first()


@transaction.atomic
def demo_delete(*, org: Organization) -> None:
    """Remove the demo organization with everything in it and its people's logins."""
    user_ids = list(org.memberships.values_list("user_id", flat=True))
    # Routes protect their hub, driver and vehicle, so a cascade from the
    # organization would refuse to run while they exist.
    Route.objects.filter(org=org).delete()
    # A proof of delivery protects its signature, so the media go after the proofs;
    # their files go once the rows are gone for good.
    from apps.pod.models import PodMedia, ProofOfDelivery

    ProofOfDelivery.objects.filter(org=org).delete()
    files = [name for row in PodMedia.objects.filter(org=org).values_list("original", "display", "thumb")
             for name in row if name]
    PodMedia.objects.filter(org=org).delete()
    transaction.on_commit(lambda: _delete_files(files))
    org.delete()
    get_user_model().objects.filter(pk__in=user_ids).delete()


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete demo media file %s", name, exc_info=True)


@transaction.atomic
def demo_recreate(*, org: Organization, day: date, history_days: int = data.HISTORY_DAYS,
                  progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Replace the demo in one transaction, so a rebuild that fails keeps the old one."""
    demo_delete(org=org)
    return demo_create(day=day, history_days=history_days, progress=progress)


@transaction.atomic
def demo_create(*, day: date, seed: int = data.SEED, history_days: int = data.HISTORY_DAYS,
                progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Create the demo organization for ``day``. Precondition: it does not exist yet.

    Raises ``Conflict`` if one of the demo's usernames belongs to someone else.
    """
    usernames = [username for username, *_ in [*data.STAFF, *data.DRIVERS]]
    taken = sorted(get_user_model().objects.filter(username__in=usernames).values_list("username", flat=True))
    if taken:
        raise Conflict(f"These usernames already exist outside the demo: {', '.join(taken)}.",
                       code="demo_usernames_taken", usernames=taken)
    rng = random.Random(f"{seed}:{day.isoformat()}")
    org = organization_create(name=data.ORG_NAME, slug=data.ORG_SLUG, timezone_name=data.TIMEZONE)
    staff = {role: _member(org, username, role, first, last) for username, role, first, last in data.STAFF}
    admin, dispatcher = staff[Role.ADMIN], staff[Role.DISPATCHER]

    hub = fleet.hub_create(actor=admin, data=HubIn(**data.HUB))
    vehicles = [fleet.vehicle_create(actor=admin, data=VehicleIn(home_hub=hub.pk, **spec)) for spec in data.VEHICLES]
    shift_start, shift_end = (time.fromisoformat(t) for t in data.SHIFT)
    drivers = [
        fleet.driver_create(actor=admin, data=DriverIn(
            username=username, password=data.PASSWORD, name=name, phone=phone,
            shift_start=shift_start, shift_end=shift_end, home_hub=hub.pk, current_vehicle=vehicles[index].pk,
        ))
        for username, name, phone, index in data.DRIVERS
    ]

    # The working days before today, worked to the end, so reports and ETA accuracy have a past.
    past_days = demo_history.history_days(min(day, timezone.localdate(timezone=zoneinfo.ZoneInfo(hub.timezone))),
                                          history_days)
    past_attempts = past_failed = 0
    for number, past in enumerate(past_days, start=1):
        if progress is not None:
            progress(f"Delivering past day {number} of {len(past_days)} ({past.isoformat()}) ...")
        _, attempts, failed = demo_history.demo_history_day(
            org=org, hub=hub, vehicles=vehicles, drivers=drivers, dispatcher=dispatcher, day=past,
            rng=random.Random(f"{seed}:{past.isoformat()}"))
        past_attempts, past_failed = past_attempts + attempts, past_failed + failed

    inputs = demo_orders(day=day, rng=rng)
    # The shops' integration delivers the morning's orders in one batch.
    order_bulk_create(actor=system_actor(org), orders=inputs)
    pool = list(Order.objects.filter(org=org, external_id__in=[o.external_id for o in inputs[:data.PLANNED_COUNT]]))

    planned = plan_routes(hub=hub, vehicles=vehicles, drivers=drivers, dispatcher=dispatcher, day=day, orders=pool)

    for index, delivered, then in data.PROGRESS:
        if index < len(planned):
            _drive(planned[index], delivered=delivered, then=then)
    return _summary(org, day, hub, orders=Order.objects.filter(org=org, external_id__in=[o.external_id for o in inputs]),
                    history=(len(past_days), past_attempts, past_failed))


def plan_routes(*, hub: Hub, vehicles: Sequence[Vehicle], drivers: Sequence[Driver], dispatcher: Actor, day: date,
                orders: Sequence[Order]) -> list[Route]:
    """The dispatcher loads the vans, orders each tour and publishes it to its driver."""
    loads, _ = demo_plan(hub=hub, vehicles=vehicles, orders=orders)
    driver_of = {d.current_vehicle_id: d for d in drivers}
    start = datetime.combine(day, drivers[0].shift_start, tzinfo=zoneinfo.ZoneInfo(hub.timezone))
    planned: list[Route] = []
    for number, load in enumerate((ld for ld in loads if ld.orders), start=1):
        ordered = visit_order(hub=hub, orders=load.orders, start=start)
        route = routes.route_create(actor=dispatcher, data=RouteIn(
            hub=hub.pk, date=day.isoformat(), name=f"Tour {number} · {_territory(ordered)}",
            driver=driver_of[load.vehicle.pk].pk, vehicle=load.vehicle.pk, orders=[o.pk for o in ordered],
        ))
        planned.append(routes.route_publish(actor=dispatcher, route=route))
    return planned


def _member(org: Organization, username: str, role: str, first: str, last: str) -> Actor:
    membership = member_create(org=org, username=username, password=data.PASSWORD, role=role,
                               email=f"{username}@demo.example.com", first_name=first, last_name=last)
    return Actor(org=org, scopes=ROLE_SCOPES[role], user_id=membership.user_id, role=role)


def _drive(route: Route, *, delivered: int, then: str | None) -> None:
    """The route's driver sets off, delivers the first stops and gets on with the next."""
    driver = Actor(org=route.org, scopes=ROLE_SCOPES[Role.DRIVER], user_id=route.driver.user_id, role=Role.DRIVER,
                   driver_id=route.driver_id)
    routes.route_start(actor=driver, route=route)
    todo = list(route.stops.order_by("sequence"))
    for stop in todo[:delivered]:
        stops.stop_arrive(actor=driver, stop=stop)
        stops.stop_complete(actor=driver, stop=stop)
    if then is None or len(todo) <= delivered:
        return
    following = todo[delivered]
    stops.stop_arrive(actor=driver, stop=following)
    if then == "failed":
        stops.stop_fail(actor=driver, stop=following, reason=FailureReason.RECIPIENT_ABSENT,
                        notes="Nobody answered; card left in the letterbox.")


def _territory(orders: Sequence[Order]) -> str:
    district_of = {s.postal_code: s.district for s in data.STREETS}
    counts = Counter(district_of.get(o.postal_code, o.postal_code) for o in orders)
    return " / ".join(d for d, _ in counts.most_common(2))


def _summary(org: Organization, day: date, hub: Hub, *, orders, history: tuple[int, int, int]) -> DemoSummary:
    routes_today = Route.objects.filter(org=org, date=day)
    stops_done = Stop.objects.filter(org=org, route__date=day, state=StopState.COMPLETED)
    return DemoSummary(
        org=org, day=day, hub=hub,
        vehicles=Vehicle.objects.filter(org=org).count(),
        drivers=Driver.objects.filter(org=org).count(),
        orders=orders.count(),
        planned=orders.exclude(state=OrderState.CREATED).count(),
        routes=routes_today.count(),
        routes_started=routes_today.filter(started_at__isnull=False).count(),
        stops_delivered=stops_done.filter(outcome=StopOutcome.SUCCEEDED).count(),
        stops_failed=stops_done.filter(outcome=StopOutcome.FAILED).count(),
        history_days=history[0], history_attempts=history[1], history_failed=history[2],
        logins=[(username, role) for username, role, *_ in data.STAFF]
        + [(username, f"driver, {name}") for username, name, *_ in data.DRIVERS],
    )


# --- orders ---------------------------------------------------------------


def _ascii(text: str) -> str:
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("ı", "i")):
        text = text.replace(umlaut, spelled).replace(umlaut.upper(), spelled.capitalize())
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _decimal(value: float, places: int) -> Decimal:
    return Decimal(str(round(value, places)))


def _items(rng: random.Random, cold: bool) -> list[data.Product]:
    if cold:
        return rng.sample(data.COLD_PRODUCTS, rng.choice([1, 1, 2]))
    # Light products are ordered far more often than heavy ones.
    weights = [1 / math.sqrt(p.weight_kg + 0.5) for p in data.PRODUCTS]
    lines = rng.choices([1, 2, 3], weights=[60, 30, 10])[0]
    return list(dict.fromkeys(rng.choices(data.PRODUCTS, weights=weights, k=lines)))


def demo_orders(*, day: date, rng: random.Random) -> list[OrderIn]:
    """The day's orders: real streets, slotted windows, a few cold-chain and unclear ones."""
    # Drivers have the numbers from 900 up.
    phones = rng.sample(range(900), data.ORDER_COUNT)
    cold = set(rng.sample(range(data.ORDER_COUNT), data.COLD_ORDERS))
    unclear = set(rng.sample(range(data.PLANNED_COUNT, data.ORDER_COUNT), data.LOW_CONFIDENCE_ORDERS))
    return [
        _order(rng, day=day, index=i, phone=f"{data.PHONE_PREFIX}{phones[i]:03d}", cold=i in cold, unclear=i in unclear)
        for i in range(data.ORDER_COUNT)
    ]


def _order(rng: random.Random, *, day: date, index: int, phone: str, cold: bool, unclear: bool) -> OrderIn:
    street = rng.choice(data.STREETS)
    first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
    if unclear:
        # Only the street came through: the point is a guess somewhere along it.
        address, confidence, spread = street.name, GeocodeConfidence.LOW, 0.004
    else:
        suffix = rng.choice("ab") if rng.random() < 0.08 else ""
        address = f"{street.name} {rng.randint(street.first_number, street.last_number)}{suffix}"
        confidence, spread = ((GeocodeConfidence.APPROXIMATE, 0.0015) if rng.random() < 0.1
                              else (GeocodeConfidence.EXACT, 0.0006))
    products = _items(rng, cold)
    items = [
        ItemIn(sku=p.sku, description=p.description, quantity=2 if p.weight_kg < 3 and rng.random() < 0.2 else 1,
               weight_kg=_decimal(min(25.0, max(0.2, p.weight_kg * rng.uniform(0.9, 1.1))), 2),
               volume_l=_decimal(p.volume_l * rng.uniform(0.9, 1.1), 1))
        for p in products
    ]
    window_start = window_end = None
    if rng.random() < 0.75:
        tz = zoneinfo.ZoneInfo(data.TIMEZONE)
        opens, closes = rng.choice(data.SLOTS)
        window_start, window_end = (datetime.combine(day, time(h), tzinfo=tz) for h in (opens, closes))
    pod: list[PodRequirement] = []
    if any(p.sku == "CF-9300" for p in products):
        # Prescription medicine: only to the patient, who reads out the PIN.
        pod = [PodRequirement.PIN, PodRequirement.SIGNATURE]
    elif any(p.valuable for p in products):
        chance = rng.random()
        pod = [PodRequirement.SIGNATURE] if chance < 0.5 else [PodRequirement.PIN] if chance < 0.65 else []
    if rng.random() < 0.1:
        pod.append(PodRequirement.PHOTO)
    priority = rng.choices(list(Priority), weights=[10, 70, 15, 5])[0]
    instructions = ""
    if rng.random() < 0.35:
        instructions = rng.choice(data.INSTRUCTIONS).format(code=rng.randint(1000, 9999), last_name=last)
    email = f"{_ascii(first)}.{_ascii(last)}@{rng.choice(data.EMAIL_DOMAINS)}" if rng.random() < 0.8 else ""
    parcels = sum(item.quantity for item in items)
    return OrderIn(
        source=data.SOURCE, external_id=f"DEMO-{index + 1:04d}", reference=f"#{48213 + 7 * index}",
        customer_name=f"{first} {last}", customer_phone=phone, customer_email=email,
        address_line1=address, address_line2=rng.choice(data.ADDRESS_LINE2) if rng.random() < 0.2 else "",
        city=data.CITY, postal_code=street.postal_code, region="Berlin", country=data.COUNTRY,
        # A degree of longitude is 0.61 of a degree of latitude here: scale to scatter in a circle.
        lat=round(street.lat + rng.uniform(-spread, spread), 6),
        lng=round(street.lng + rng.uniform(-spread, spread) / 0.61, 6),
        geocode_confidence=confidence, window_start=window_start, window_end=window_end,
        service_time_s=min(360, 120 + 60 * (parcels - 1) + rng.choice([0, 0, 60, 120])),
        instructions=instructions, priority=int(max(priority, Priority.HIGH) if cold else priority),
        pod_requirements=pod, required_skills=["refrigerated"] if cold else [],
        custom_fields={"shop": rng.choice(data.SHOPS)}, items=items,
    )


# --- planning -------------------------------------------------------------


class Load:
    """What one vehicle carries, checked against every capacity dimension and its skills."""

    def __init__(self, vehicle: Vehicle) -> None:
        self.vehicle = vehicle
        self.orders: list[Order] = []
        self.weight, self.volume, self.parcels = Decimal(0), Decimal(0), 0

    def fits(self, order: Order) -> bool:
        return (set(order.required_skills) <= set(self.vehicle.skills)
                and self.weight + order.total_weight_kg <= self.vehicle.capacity_weight_kg
                and self.volume + order.total_volume_l <= self.vehicle.capacity_volume_l
                and self.parcels + order.parcel_count <= self.vehicle.capacity_parcels)

    def add(self, order: Order) -> None:
        self.orders.append(order)
        self.weight += order.total_weight_kg
        self.volume += order.total_volume_l
        self.parcels += order.parcel_count


def _distance(hub: Hub, order: Order) -> float:
    return timing.haversine_m(hub.lat, hub.lng, order.lat, order.lng)


def _bearing(hub: Hub, order: Order) -> float:
    # A flat projection is exact enough at city scale.
    dx = (order.lng - hub.lng) * math.cos(math.radians(hub.lat))
    return math.atan2(order.lat - hub.lat, dx) % math.tau


def demo_plan(*, hub: Hub, vehicles: Sequence[Vehicle], orders: Sequence[Order]) -> tuple[list[Load], list[Order]]:
    """Split orders into one load per vehicle; return the loads and what fits nowhere.

    Orders needing a skill go to a vehicle that has it; the cargo bike takes the
    nearest orders; the vans share the rest by an angular sweep around the hub,
    so each gets a wedge of the city as its territory.
    """
    loads = [Load(v) for v in vehicles]
    pool = sorted(orders, key=lambda o: o.pk)
    leftover: list[Order] = []
    for order in [o for o in pool if o.required_skills]:
        pool.remove(order)
        load = next((ld for ld in loads if ld.fits(order)), None)
        if load is None:
            leftover.append(order)
        else:
            load.add(order)

    bikes = [ld for ld in loads if ld.vehicle.type in (VehicleType.CARGO_BIKE, VehicleType.BIKE)]
    for bike in bikes:
        for order in sorted(pool, key=lambda o: _distance(hub, o)):
            if _distance(hub, order) > BIKE_RADIUS_M or len(bike.orders) >= BIKE_MAX_STOPS:
                break
            if bike.fits(order):
                bike.add(order)
                pool.remove(order)

    vans = [ld for ld in loads if ld not in bikes]
    if not vans:
        return loads, leftover + pool
    pool.sort(key=lambda o: _bearing(hub, o))
    if len(pool) > 1:
        # Start the sweep after the widest empty wedge, so no territory straddles it.
        gaps = [(_bearing(hub, pool[i]) - _bearing(hub, pool[i - 1])) % math.tau for i in range(len(pool))]
        widest = max(range(len(pool)), key=gaps.__getitem__)
        pool = pool[widest:] + pool[:widest]
    target = math.ceil((len(pool) + sum(len(v.orders) for v in vans)) / len(vans))
    remaining = iter(vans)
    current: Load | None = next(remaining)
    for order in pool:
        while current is not None and (len(current.orders) >= target or not current.fits(order)):
            current = next(remaining, None)
        if current is None:
            leftover.append(order)
        else:
            current.add(order)
    return loads, leftover


def _ready_at(clock: datetime, here: tuple[float, float], order: Order) -> datetime:
    """When service at ``order`` can begin: after driving there and waiting for its window."""
    arrival = clock + timedelta(seconds=timing.travel_seconds(*here, order.lat, order.lng))
    return max(arrival, order.window_start) if order.window_start else arrival


def visit_order(*, hub: Hub, orders: Sequence[Order], start: datetime) -> list[Order]:
    """Nearest neighbour from the hub, nearest in time rather than distance.

    The next stop is the one that can be served soonest, waiting for its window
    to open, so a stop whose window opens at 16:00 does not drag the route into
    the afternoon. A stop whose window is about to close goes first.
    """
    remaining = sorted(orders, key=lambda o: o.pk)
    ordered: list[Order] = []
    clock, here = start, (hub.lat, hub.lng)
    while remaining:
        ready = {o.pk: _ready_at(clock, here, o) for o in remaining}
        closing = [(o.window_end, o.pk, o) for o in remaining
                   if o.window_end is not None and o.window_end - ready[o.pk] < CLOSING_SOON]
        _, _, best = min(closing) if closing else min((ready[o.pk], o.pk, o) for o in remaining)
        clock, here = ready[best.pk] + timedelta(seconds=best.service_time_s), (best.lat, best.lng)
        ordered.append(best)
        remaining.remove(best)
    return ordered
