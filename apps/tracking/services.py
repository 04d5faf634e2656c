"""Writes for driver locations and tracking tokens.

``location_receive`` takes the pings a driver's device sends, live over the WebSocket
or as an offline backlog over HTTP, and:

1. validates each on its own (``pings.parse_ping``); a bad ping is rejected with a
   code, never an exception;
2. drops duplicates (same driver, same device time);
3. stores the rest with a status (``pings.classify``): ``shown``, or kept but not
   shown because ``inaccurate``, a ``jump`` or ``stale_time``;
4. moves the driver's hot position to the newest shown ping, only forward in device
   time (an out-of-order ping is history, not news), and hands it to the fan-out
   after commit;
5. ends an open location-stale episode (``driver.location_resumed``).

A driver's pings are processed one batch at a time: the batch locks the driver's
``DriverPosition`` row, so a WebSocket batch and an HTTP backlog arriving together
agree on what is a duplicate and where the marker is.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, OuterRef, Q, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from apps.accounts.models import Organization
from apps.dispatch.models import Driver, Order
from apps.eta import live as eta_live
from apps.events import types as ev
from apps.events.models import Event
from apps.events.services import NewEvent, events_record
from apps.realtime.groups import track_group
from apps.realtime.publisher import send_control

from . import fanout
from .models import DriverPosition, LocationPing, PingStatus, TrackingToken
from .pings import Fix, Limits, Ping, Rejection, classify, parse_ping
from .selectors import position_message

logger = logging.getLogger(__name__)

PRUNE_BATCH = 10_000


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


# --- location pings -----------------------------------------------------------------


def _locked_position(*, org_id: int, driver_id: int) -> DriverPosition | None:
    """The driver's position row, locked until the caller's transaction ends; None if the
    driver is not an active driver of the organization."""
    rows = DriverPosition.objects.select_for_update(of=("self",)).select_related("driver").filter(driver_id=driver_id)
    position = rows.first()
    if position is None:
        if not Driver.objects.filter(pk=driver_id, org_id=org_id, active=True).exists():
            return None
        DriverPosition.objects.get_or_create(driver_id=driver_id, defaults={"org_id": org_id})
        position = rows.get()
    if position.driver.org_id != org_id or not position.driver.active:
        return None
    return position


def _reference_before(*, driver_id: int, before: datetime) -> Fix | None:
    """The last shown ping before ``before``: what an out-of-order ping is compared with."""
    row = (
        LocationPing.objects.filter(driver_id=driver_id, status=PingStatus.SHOWN, device_time__lt=before)
        .order_by("-device_time")
        .values_list("lat", "lng", "device_time")
        .first()
    )
    return Fix(*row) if row else None


def location_receive(*, org_id: int, driver_id: int, pings: list[Any]) -> dict:
    """Validate, store and fan out a batch of location pings from one driver.

    The caller has authenticated the driver (the WebSocket consumer, the HTTP view).
    Returns ``{"accepted", "duplicates", "rejected": [{"index", "code", "message"}],
    "flagged"}``: ``accepted`` pings were stored, ``flagged`` of them are kept but not
    shown. Bad pings are rejected one by one (codes in ``apps/tracking/pings.py``);
    only infrastructure failures raise, so the client keeps the batch and retries.
    """
    fanout.wake()
    now = timezone.now()
    limits = Limits.from_settings()
    result: dict[str, Any] = {"accepted": 0, "duplicates": 0, "rejected": [], "flagged": 0}
    if not isinstance(pings, list):
        result["rejected"].append(Rejection(0, "bad_ping", "Send a list of pings.").as_dict())
        return result

    valid: list[Ping] = []
    for index, raw in enumerate(pings):
        if index >= settings.LOCATION_MAX_BATCH:
            result["rejected"].append(Rejection(
                index, "batch_limit", f"At most {settings.LOCATION_MAX_BATCH} pings per batch; send this one again.",
            ).as_dict())
            continue
        parsed = parse_ping(index, raw, now=now, limits=limits)
        if isinstance(parsed, Rejection):
            result["rejected"].append(parsed.as_dict())
        else:
            valid.append(parsed)
    if not valid:
        return result

    with transaction.atomic():
        position = _locked_position(org_id=org_id, driver_id=driver_id)
        if position is None:
            result["rejected"].extend(
                Rejection(p.index, "driver_not_allowed", "Only an active driver of this organization sends pings.").as_dict()
                for p in valid
            )
            result["rejected"].sort(key=lambda r: r["index"])
            return result

        fresh = _drop_duplicates(driver_id=driver_id, pings=valid)
        result["duplicates"] = len(valid) - len(fresh)
        rows = _classify(driver_id=driver_id, pings=fresh, position=position, now=now, limits=limits)
        LocationPing.objects.bulk_create(
            [LocationPing(org_id=org_id, driver_id=driver_id, lat=p.lat, lng=p.lng, accuracy_m=p.accuracy_m,
                          speed_mps=p.speed_mps, heading=p.heading, device_time=p.device_time, received_at=now,
                          status=status) for p, status in rows],
            batch_size=1000,
            ignore_conflicts=True,  # belt and braces: the row lock already rules duplicates out
        )
        result["accepted"] = len(rows)
        result["flagged"] = sum(1 for _, status in rows if status != PingStatus.SHOWN)

        moved = _advance(position, [p for p, status in rows if status == PingStatus.SHOWN])
        position.last_ping_at = now  # a duplicate is a valid ping too: the device is reporting
        resumed_from = position.stale_since
        position.stale_since = None
        position.save()
        if resumed_from is not None:
            events_record(org=Organization.objects.get(pk=org_id), actor="system", events=[NewEvent(
                ev.DRIVER_LOCATION_RESUMED, "driver", driver_id,
                {"driver_id": driver_id, "stale_since": _iso(resumed_from), "last_ping_at": _iso(now)},
            )])
        if moved:
            message, at = position_message(position), position.device_time
            transaction.on_commit(lambda: fanout.push(org_id=org_id, driver_id=driver_id, at=at, position=message))
            # The ETA engine refreshes this driver's route on the fan-out thread's next tick.
            lat, lng = position.lat, position.lng
            transaction.on_commit(lambda: eta_live.observe(driver_id=driver_id, lat=lat, lng=lng, at=at.timestamp()))
    result["rejected"].sort(key=lambda r: r["index"])
    return result


def _drop_duplicates(*, driver_id: int, pings: list[Ping]) -> list[Ping]:
    """Pings whose device time is new for the driver (stored or earlier in the batch)."""
    seen = set(
        LocationPing.objects.filter(driver_id=driver_id, device_time__in={p.device_time for p in pings})
        .values_list("device_time", flat=True)
    )
    fresh = []
    for ping in pings:
        if ping.device_time not in seen:
            seen.add(ping.device_time)
            fresh.append(ping)
    return fresh


def _classify(*, driver_id: int, pings: list[Ping], position: DriverPosition, now: datetime,
              limits: Limits) -> list[tuple[Ping, str]]:
    """Each ping with its status, in device-time order. Each is compared with the last
    shown point before it: from this batch, the hot position, or (for pings older than
    the hot position) the stored history."""
    ordered = sorted(pings, key=lambda p: p.device_time)
    hot = Fix(position.lat, position.lng, position.device_time) if position.device_time is not None else None
    reference = hot
    if ordered and hot is not None and ordered[0].device_time < hot.device_time:
        reference = _reference_before(driver_id=driver_id, before=ordered[0].device_time)
    out = []
    for ping in ordered:
        if (hot is not None and hot.device_time < ping.device_time
                and (reference is None or reference.device_time < hot.device_time)):
            reference = hot  # past the out-of-order stretch: continue from the live marker
        status = classify(ping, reference=reference, now=now, limits=limits)
        if status == PingStatus.SHOWN:
            reference = Fix(ping.lat, ping.lng, ping.device_time)
        out.append((ping, status))
    return out


def _advance(position: DriverPosition, shown: list[Ping]) -> bool:
    """Move the hot position to the newest shown ping if it is newer; never backwards."""
    if not shown:
        return False
    newest = max(shown, key=lambda p: p.device_time)
    if position.device_time is not None and newest.device_time <= position.device_time:
        return False
    position.lat, position.lng, position.accuracy_m = newest.lat, newest.lng, newest.accuracy_m
    position.speed_mps, position.heading, position.device_time = newest.speed_mps, newest.heading, newest.device_time
    return True


# --- stale alerts -------------------------------------------------------------------


def location_check_stale(*, now: datetime | None = None) -> list[int]:
    """Record ``driver.location_stale`` for each active on-duty driver who has not sent
    a valid ping for LOCATION_STALE_AFTER_S (counted from going on duty if they have not
    reported since); once per episode. Returns the ids of the drivers newly alerted.

    Runs every LOCATION_STALE_CHECK_S in each process's fan-out thread. An episode is
    claimed with a conditional update, so concurrent checks record it once.
    """
    now = now or timezone.now()
    stale_after = settings.LOCATION_STALE_AFTER_S
    cutoff = now - timedelta(seconds=stale_after)

    # An episode ends silently when the driver goes off duty (driver.duty_changed says so).
    DriverPosition.objects.filter(stale_since__isnull=False).filter(
        Q(driver__on_duty=False) | Q(driver__active=False)
    ).update(stale_since=None)

    went_on_duty = (
        Event.objects.filter(org_id=OuterRef("org_id"), subject_type="driver",
                             subject_id=Cast(OuterRef("pk"), output_field=CharField()),
                             type=ev.DRIVER_DUTY_CHANGED, payload__on_duty=True)
        .order_by("-sequence").values("created_at")[:1]
    )
    # No open episode (also true without a position row) and nothing heard since the cutoff.
    candidates = (
        Driver.objects.filter(on_duty=True, active=True, position__stale_since__isnull=True)
        .filter(Q(position__last_ping_at__isnull=True) | Q(position__last_ping_at__lt=cutoff))
        .annotate(on_duty_since=Subquery(went_on_duty))
        .values_list("pk", "org_id", "on_duty_since", "position__last_ping_at")
    )
    by_org: dict[int, list[tuple[int, datetime | None]]] = {}
    for driver_id, org_id, on_duty_since, last_ping_at in candidates:
        heard = max((t for t in (on_duty_since, last_ping_at) if t is not None), default=None)
        if heard is None or heard < cutoff:
            by_org.setdefault(org_id, []).append((driver_id, last_ping_at))

    alerted: list[int] = []
    for org_id, drivers in by_org.items():
        with transaction.atomic():
            events = []
            for driver_id, last_ping_at in drivers:
                DriverPosition.objects.get_or_create(driver_id=driver_id, defaults={"org_id": org_id})
                # Claim the episode: a ping that landed since the query, or another
                # process's check, makes this update match nothing.
                claimed = DriverPosition.objects.filter(
                    Q(last_ping_at__isnull=True) | Q(last_ping_at__lt=cutoff),
                    driver_id=driver_id, stale_since__isnull=True, driver__on_duty=True,
                ).update(stale_since=now)
                if not claimed:
                    continue
                events.append(NewEvent(ev.DRIVER_LOCATION_STALE, "driver", driver_id, {
                    "driver_id": driver_id, "last_ping_at": _iso(last_ping_at), "stale_after_s": stale_after,
                }))
                alerted.append(driver_id)
            if events:
                events_record(org=Organization.objects.get(pk=org_id), actor="system", events=events)
    return alerted


# --- retention ----------------------------------------------------------------------


def location_prune(*, now: datetime | None = None) -> int:
    """Delete pings older than LOCATION_RETENTION_DAYS (by device time), in batches so
    no statement holds locks on a large table for long. Hot positions are kept."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.LOCATION_RETENTION_DAYS)
    total = 0
    while True:
        ids = list(LocationPing.objects.filter(device_time__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            return total
        deleted, _ = LocationPing.objects.filter(pk__in=ids).delete()
        total += deleted


# --- tracking tokens ----------------------------------------------------------------


def tracking_token_issue(*, order: Order, expires_at: datetime | None = None) -> TrackingToken:
    """A new link for the customer's tracking page; earlier tokens stay valid."""
    # 24 bytes = 192 bits from the OS's CSPRNG, 32 URL-safe characters.
    return TrackingToken.objects.create(org_id=order.org_id, order=order, token=secrets.token_urlsafe(24),
                                        expires_at=expires_at)


@transaction.atomic
def tracking_token_revoke(*, token: TrackingToken) -> TrackingToken:
    """Revoke a token (idempotent) and close the tracking pages open on the order.

    The track group is per order, so pages opened with another, still valid token
    close too; they reconnect and get straight back in (a 4404 only for this token)."""
    if TrackingToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        order_id = token.order_id
        transaction.on_commit(lambda: send_control(track_group(order_id), {
            "action": "revoke", "message": "This tracking link is no longer valid."}))
    token.refresh_from_db()
    return token
