"""Writes for driver locations and tracking tokens.

A driver's pings arrive live over the WebSocket (stored in group commits by
``writer.py``) or as an offline backlog over HTTP (``location_receive``). Both take the
same two steps:

1. ``location_parse`` validates each ping on its own (``pings.parse_ping``); a bad
   ping is rejected with a code, never an exception. Pure: no database.
2. ``location_store`` stores the valid pings of one or many batches (many drivers) in
   one transaction:

   - drops duplicates (same driver, same device time: stored before, or earlier in
     this transaction);
   - stores the rest with a status (``pings.classify``): ``shown``, or kept but not
     shown because ``inaccurate``, a ``jump`` or ``stale_time``;
   - moves each driver's hot position to the newest shown ping, only forward in device
     time (an out-of-order ping is history, not news), and hands it to the fan-out
     after commit;
   - ends an open location-stale episode (``driver.location_resumed``).

Every store locks the ``DriverPosition`` rows of its drivers (in driver order, so two
stores never deadlock), so a WebSocket group commit and an HTTP backlog arriving together
agree on what is a duplicate and where the marker is. A store costs the same handful of
statements whether it carries one ping or a thousand: that is what lets one process keep
up with thousands of drivers (docs/performance.md, "Live fan-out").
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, OuterRef, Q, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from apps.accounts.models import Organization
from apps.common import metrics
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


@dataclass
class PingBatch:
    """One call's pings from one driver: the valid ones waiting to be stored, and the
    acknowledgement (``{"accepted", "duplicates", "rejected", "flagged"}``) that
    ``location_store`` completes."""

    org_id: int
    driver_id: int
    received_at: datetime
    valid: list[Ping]
    result: dict[str, Any] = field(default_factory=lambda: {"accepted": 0, "duplicates": 0, "rejected": [],
                                                             "flagged": 0})


def location_parse(*, org_id: int, driver_id: int, pings: list[Any], now: datetime | None = None) -> PingBatch:
    """Validate a batch of pings as the device sent it; pure (no database).

    Bad pings are rejected one by one (codes in ``apps/tracking/pings.py``) in the
    batch's ``result``; the valid ones wait in ``valid`` for ``location_store``."""
    now = now or timezone.now()
    batch = PingBatch(org_id=org_id, driver_id=driver_id, received_at=now, valid=[])
    rejected = batch.result["rejected"]
    if not isinstance(pings, list):
        rejected.append(Rejection(0, "bad_ping", "Send a list of pings.").as_dict())
        return batch
    limits = Limits.from_settings()
    for index, raw in enumerate(pings):
        if index >= settings.LOCATION_MAX_BATCH:
            rejected.append(Rejection(
                index, "batch_limit", f"At most {settings.LOCATION_MAX_BATCH} pings per batch; send this one again.",
            ).as_dict())
            continue
        parsed = parse_ping(index, raw, now=now, limits=limits)
        if isinstance(parsed, Rejection):
            rejected.append(parsed.as_dict())
        else:
            batch.valid.append(parsed)
    return batch


def location_receive(*, org_id: int, driver_id: int, pings: list[Any]) -> dict:
    """Validate, store and fan out a batch of location pings from one driver, now.

    The caller has authenticated the driver (the HTTP view; live pings go through
    ``writer.ping_writer``, which calls the same two steps for many drivers at once).
    Returns ``{"accepted", "duplicates", "rejected": [{"index", "code", "message"}],
    "flagged"}``: ``accepted`` pings were stored, ``flagged`` of them are kept but not
    shown. Only infrastructure failures raise, so the client keeps the batch and retries.
    """
    fanout.wake()
    batch = location_parse(org_id=org_id, driver_id=driver_id, pings=pings)
    location_store(batches=[batch])
    return batch.result


def _locked_positions(batches: list[PingBatch]) -> dict[int, DriverPosition]:
    """The position rows of the batches' active drivers, locked until the caller's
    transaction ends, in driver order (``driver`` loaded: the caller checks each batch's
    organization against it)."""
    claims: dict[int, set[int]] = defaultdict(set)  # driver id -> organizations claimed for it
    for batch in batches:
        claims[batch.driver_id].add(batch.org_id)

    def lock(ids: list[int]) -> list[DriverPosition]:
        return list(DriverPosition.objects.select_for_update(of=("self",)).select_related("driver")
                    .filter(driver_id__in=ids).order_by("driver_id"))

    rows = lock(sorted(claims))
    missing = set(claims) - {p.driver_id for p in rows}
    if missing:
        # A driver's first ping ever: make the row (another store may make it at the same
        # moment, hence ignore_conflicts), then lock it like the others.
        allowed = Driver.objects.filter(pk__in=missing, active=True).values_list("pk", "org_id")
        new = [DriverPosition(driver_id=pk, org_id=org_id) for pk, org_id in allowed if org_id in claims[pk]]
        if new:
            DriverPosition.objects.bulk_create(new, ignore_conflicts=True)
            rows += lock(sorted(p.driver_id for p in new))
    return {p.driver_id: p for p in rows if p.driver.active}


def location_store(*, batches: list[PingBatch]) -> None:
    """Store the valid pings of ``batches`` (any drivers, any organizations) in one
    transaction, completing each batch's ``result``; see the module docstring.

    Batches of the same driver are applied in list order, as if stored one after the
    other. Raises only on infrastructure failures, and then nothing is stored."""
    todo = [b for b in batches if b.valid]
    if not todo:
        for batch in batches:
            batch.result["rejected"].sort(key=lambda r: r["index"])
        return
    limits = Limits.from_settings()
    by_driver: dict[int, list[PingBatch]] = defaultdict(list)
    for batch in todo:
        by_driver[batch.driver_id].append(batch)
    rows: list[tuple[Any, ...]] = []  # PING_COLUMNS
    moved: list[DriverPosition] = []
    resumed: list[tuple[DriverPosition, datetime, datetime]] = []
    with transaction.atomic():
        positions = _locked_positions(todo)
        for driver_id, driver_batches in list(by_driver.items()):
            position = positions.get(driver_id)
            # Tenancy: a driver's pings are stored for the driver's own organization only.
            allowed = [b for b in driver_batches if position is not None and b.org_id == position.driver.org_id]
            for batch in driver_batches:
                if not any(batch is b for b in allowed):
                    batch.result["rejected"].extend(
                        Rejection(p.index, "driver_not_allowed",
                                  "Only an active driver of this organization sends pings.").as_dict()
                        for p in batch.valid)
            if allowed:
                by_driver[driver_id] = allowed
            else:
                del by_driver[driver_id]
        times = {p.device_time for driver_batches in by_driver.values() for b in driver_batches for p in b.valid}
        seen = set(LocationPing.objects.filter(driver_id__in=list(by_driver), device_time__in=times)
                   .values_list("driver_id", "device_time")) if times else set()
        for driver_id, driver_batches in by_driver.items():
            position = positions[driver_id]
            shown_here: list[Fix] = []  # shown in this transaction, not yet in the table
            device_time_before = position.device_time
            for batch in driver_batches:
                fresh = []
                for ping in batch.valid:
                    key = (driver_id, ping.device_time)
                    if key not in seen:
                        seen.add(key)
                        fresh.append(ping)
                batch.result["duplicates"] = len(batch.valid) - len(fresh)
                classified = _classify(driver_id=driver_id, pings=fresh, position=position, now=batch.received_at,
                                       limits=limits, shown_here=shown_here)
                rows += [(batch.org_id, driver_id, p.lat, p.lng, p.accuracy_m, p.speed_mps, p.heading,
                          p.device_time, batch.received_at, status) for p, status in classified]
                batch.result["accepted"] = len(classified)
                batch.result["flagged"] = sum(1 for _, status in classified if status != PingStatus.SHOWN)
                shown = [p for p, status in classified if status == PingStatus.SHOWN]
                shown_here += [Fix(p.lat, p.lng, p.device_time) for p in shown]
                _advance(position, shown)
                # A duplicate is a valid ping too: the device is reporting.
                position.last_ping_at = max(position.last_ping_at or batch.received_at, batch.received_at)
            if position.stale_since is not None:
                resumed.append((position, position.stale_since, position.last_ping_at))
                position.stale_since = None
            if position.device_time != device_time_before:
                moved.append(position)
        _insert_pings(rows)
        _save_positions([positions[driver_id] for driver_id in by_driver])
        for org_id in sorted({p.org_id for p, _, _ in resumed}):
            events_record(org=Organization.objects.get(pk=org_id), actor="system", events=[NewEvent(
                ev.DRIVER_LOCATION_RESUMED, "driver", p.driver_id,
                {"driver_id": p.driver_id, "stale_since": _iso(since), "last_ping_at": _iso(heard)},
            ) for p, since, heard in resumed if p.org_id == org_id])
        if moved:
            messages = [(p.org_id, p.driver_id, p.device_time, position_message(p)) for p in moved]
            transaction.on_commit(lambda: _fan_out(messages))
    for batch in batches:
        batch.result["rejected"].sort(key=lambda r: r["index"])
        result = batch.result
        shown = result["accepted"] - result["flagged"]
        for status, count in (("shown", shown), ("flagged", result["flagged"]), ("duplicate", result["duplicates"]),
                              ("rejected", len(result["rejected"]))):
            if count:
                metrics.location_pings.labels(status=status).inc(count)


def _fan_out(messages: list[tuple[int, int, datetime, dict[str, Any]]]) -> None:
    for org_id, driver_id, at, message in messages:
        fanout.push(org_id=org_id, driver_id=driver_id, at=at, position=message)
        # The ETA engine refreshes this driver's route on the fan-out thread's next tick
        # (apps/eta/live.py): no database work here.
        eta_live.observe(driver_id=driver_id, lat=message["lat"], lng=message["lng"], at=at.timestamp())
    fanout.kick()


PING_COLUMNS = ("org", "driver", "lat", "lng", "accuracy_m", "speed_mps", "heading", "device_time", "received_at",
                "status")
POSITION_COLUMNS = ("driver", "lat", "lng", "accuracy_m", "speed_mps", "heading", "device_time", "last_ping_at",
                    "stale_since")
_PG_TYPES = {"BigAutoField": "bigint", "ForeignKey": "bigint", "OneToOneField": "bigint", "FloatField": "float8",
             "DateTimeField": "timestamptz", "CharField": "text"}


def _columns(model: Any, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(quoted column, PostgreSQL array element type) of each field."""
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    return [(qn(f.column), _PG_TYPES[f.get_internal_type()]) for f in fields]


def _insert_pings(rows: list[tuple[Any, ...]]) -> None:
    """Every ping of the commit in one statement. On PostgreSQL: one ``INSERT ... SELECT
    FROM unnest(arrays)``, the same text whatever the row count (nothing to re-parse per
    commit); elsewhere the ORM's multi-row insert. Conflicts are ignored as a last line
    of defence: the position locks already rule duplicates out."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        LocationPing.objects.bulk_create([LocationPing(**dict(zip((c + "_id" if c in ("org", "driver") else c
                                                                   for c in PING_COLUMNS), row, strict=True)))
                                          for row in rows], batch_size=1000, ignore_conflicts=True)
        return
    columns = _columns(LocationPing, PING_COLUMNS)
    table = connection.ops.quote_name(LocationPing._meta.db_table)
    # Identifiers from the model only; every value is a parameter.
    sql = (f"INSERT INTO {table} ({', '.join(c for c, _ in columns)}) "  # noqa: S608
           f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for _, t in columns)}) ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(values) for values in zip(*rows, strict=True)])


def _save_positions(positions: list[DriverPosition]) -> None:
    """Every driver's row in one statement (the rows are locked): on PostgreSQL an
    ``UPDATE ... FROM unnest(arrays)``, elsewhere one pipelined ``executemany``."""
    if not positions:
        return
    now = timezone.now()
    values = [(p.driver_id, p.lat, p.lng, p.accuracy_m, p.speed_mps, p.heading, p.device_time, p.last_ping_at,
               p.stale_since) for p in positions]
    columns = _columns(DriverPosition, POSITION_COLUMNS)
    table = connection.ops.quote_name(DriverPosition._meta.db_table)
    updated_at = connection.ops.quote_name(DriverPosition._meta.get_field("updated_at").column)
    key = columns[0][0]
    if connection.vendor == "postgresql":
        # Identifiers from the model only; every value is a parameter.
        sql = (f"UPDATE {table} AS p SET {', '.join(f'{c} = v.{c}' for c, _ in columns[1:])}, "  # noqa: S608
               f"{updated_at} = %s FROM unnest({', '.join(f'%s::{t}[]' for _, t in columns)}) "
               f"AS v({', '.join(c for c, _ in columns)}) WHERE p.{key} = v.{key}")
        params = [now, *[list(column) for column in zip(*values, strict=True)]]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    dt = connection.ops.adapt_datetimefield_value
    sql = (f"UPDATE {table} SET {', '.join(f'{c} = %s' for c, _ in columns[1:])}, "  # noqa: S608
           f"{updated_at} = %s WHERE {key} = %s")
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(*v[1:6], dt(v[6]), dt(v[7]), dt(v[8]), dt(now), v[0]) for v in values])


def _reference_before(*, driver_id: int, before: datetime, shown_here: list[Fix]) -> Fix | None:
    """The last shown ping before ``before``: what an out-of-order ping is compared with.
    ``shown_here`` are shown pings of this transaction, not in the table yet."""
    row = (
        LocationPing.objects.filter(driver_id=driver_id, status=PingStatus.SHOWN, device_time__lt=before)
        .order_by("-device_time")
        .values_list("lat", "lng", "device_time")
        .first()
    )
    candidates = [Fix(*row)] if row else []
    candidates += [f for f in shown_here if f.device_time < before]
    return max(candidates, key=lambda f: f.device_time, default=None)


def _classify(*, driver_id: int, pings: list[Ping], position: DriverPosition, now: datetime,
              limits: Limits, shown_here: list[Fix]) -> list[tuple[Ping, str]]:
    """Each ping with its status, in device-time order. Each is compared with the last
    shown point before it: from this batch, the hot position, or (for pings older than
    the hot position) the stored history."""
    ordered = sorted(pings, key=lambda p: p.device_time)
    hot = Fix(position.lat, position.lng, position.device_time) if position.device_time is not None else None
    reference = hot
    if ordered and hot is not None and ordered[0].device_time < hot.device_time:
        reference = _reference_before(driver_id=driver_id, before=ordered[0].device_time, shown_here=shown_here)
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
