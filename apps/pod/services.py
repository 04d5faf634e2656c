"""POD writes: storing uploaded media, and applying driver actions exactly once.

A driver action (arrive, complete, fail) arrives with the UUID the phone generated
when the driver acted. The first result is stored under that key and returned to
every retry; the key is reserved in the same transaction as the change, so a retry
racing the original waits on the unique index and then reads the stored answer.

Conflicts follow one rule: a delivered parcel cannot be undelivered, and nothing is
silently overwritten. A completion whose stop was taken off the route while the
phone was offline is still recorded (and the order's newer open stop is cancelled);
a second completion of a delivery that is already closed is kept with its proof and
raised to the dispatcher as an exception.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.common.db import atomic_with_retry
from apps.common.exceptions import BusinessRuleViolation, Conflict, NotFound
from apps.dispatch import selectors as dispatch_selectors
from apps.dispatch.lifecycle import ORDER_TRANSITIONS, order_transition, stop_transition
from apps.dispatch.models import (
    Driver,
    Order,
    OrderOutcome,
    OrderState,
    Route,
    RouteStatus,
    Stop,
    StopKind,
    StopOutcome,
    StopState,
)
from apps.dispatch.services import stops as stop_services
from apps.dispatch.services.routes import route_bump_version
from apps.events import types as ev
from apps.events.models import Event
from apps.events.services import NewEvent, events_record

from .inputs import DriverActionIn, PodIn
from .media import check_image
from .models import DispatchException, DriverAction, ExceptionKind, MediaKind, PodMedia, ProofOfDelivery
from .requirements import Captured, delivery_pin, require, requirements_for

logger = logging.getLogger(__name__)


# --- media ---------------------------------------------------------------------------


def media_upload(*, actor: Actor, kind: str, data: bytes, claimed_sha256: str = "",
                 stop: Stop | None = None) -> tuple[PodMedia, bool]:
    """Check, re-encode and store an image; return it and whether it was new.

    Idempotent by content: the same bytes again return the stored record. A
    ``claimed_sha256`` that does not match the bytes (damaged in transit) is refused,
    so the phone keeps its copy and sends it again. Files are written before the row;
    if the row cannot be written, the files are removed again, so a failed upload
    leaves nothing behind.
    """
    checked = check_image(data, kind=kind)
    if claimed_sha256 and claimed_sha256 != checked.sha256:
        raise Conflict("The file's SHA-256 does not match the one sent with it; it was damaged in transit. "
                       "Send it again.", code="hash_mismatch", received_sha256=checked.sha256)
    existing = PodMedia.objects.filter(org=actor.org, sha256=checked.sha256).first()
    if existing is not None and existing.purged_at is None:
        return existing, False

    # A fresh folder per attempt: a concurrent upload of the same bytes never shares
    # (or deletes) our files. Names are ours; the client's file name is never used.
    base = f"pod/{actor.org.pk}/{checked.sha256[:2]}/{checked.sha256}/{uuid.uuid4().hex}"
    extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[checked.original_format]
    saved: list[str] = []
    try:
        saved.append(default_storage.save(f"{base}/original.{extension}", ContentFile(data)))
        saved.append(default_storage.save(f"{base}/display.{checked.display.extension}", ContentFile(checked.display.data)))
        saved.append(default_storage.save(f"{base}/thumb.{checked.thumb.extension}", ContentFile(checked.thumb.data)))
        with transaction.atomic():
            if existing is not None:
                # Bytes whose files the retention purge deleted, sent again: stored anew
                # under the same record (a conditional update, so a concurrent re-upload
                # of them keeps its own files and we remove ours).
                if not PodMedia.objects.filter(pk=existing.pk, purged_at__isnull=False).update(
                        original=saved[0], display=saved[1], thumb=saved[2], purged_at=None, created_at=timezone.now()):
                    raise IntegrityError("restored concurrently")
                media = PodMedia.objects.get(pk=existing.pk)
            else:
                media = PodMedia.objects.create(
                    org=actor.org, kind=kind, sha256=checked.sha256, original_format=checked.original_format,
                    original_bytes=checked.size, original=saved[0], display=saved[1], thumb=saved[2],
                    display_content_type=checked.display.content_type, width=checked.width, height=checked.height,
                    uploaded_by_id=actor.user_id, stop=stop,
                )
    except IntegrityError:
        # The same bytes were stored by a concurrent request a moment ago: theirs stands.
        _delete_quietly(saved)
        return PodMedia.objects.get(org=actor.org, sha256=checked.sha256), False
    except BaseException:
        _delete_quietly(saved)
        raise
    logger.info("pod media stored org=%s sha256=%s format=%s %dx%d bytes=%d", actor.org.pk, checked.sha256,
                checked.original_format, checked.width, checked.height, checked.size)
    return media, True


def _delete_quietly(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # the original error matters more; log and go on
            logger.warning("could not delete %s after a failed upload", name, exc_info=True)


# --- driver actions ------------------------------------------------------------------


def _request_hash(data: DriverActionIn) -> str:
    body = data.model_dump(mode="json")
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def driver_action_apply(*, actor: Actor, data: DriverActionIn,
                        render_stop: Any = None) -> tuple[DriverAction, bool]:
    """Apply one driver action once. Returns the stored action and whether this call was
    a replay of an earlier one. ``render_stop(stop) -> dict`` serializes the stop for the
    stored response (the API passes its serializer)."""
    request_hash = _request_hash(data)
    stored = _stored(actor, data, request_hash)
    if stored is not None:
        return stored, True
    try:
        action = atomic_with_retry(lambda: _apply(actor, data, request_hash, render_stop))
    except IntegrityError:
        # A retry of the same key committed while we worked: its result stands.
        stored = _stored(actor, data, request_hash)
        if stored is None:
            raise
        return stored, True
    return action, False


def _stored(actor: Actor, data: DriverActionIn, request_hash: str) -> DriverAction | None:
    return _stored_by_key(actor, data.id, request_hash)


def _stored_by_key(actor: Actor, key: uuid.UUID, request_hash: str) -> DriverAction | None:
    stored = DriverAction.objects.filter(org=actor.org, key=key).first()
    if stored is not None and stored.request_hash != request_hash:
        raise Conflict("This action id was already used for a different action.", code="idempotency_key_reused",
                       action_id=str(key))
    return stored


def stop_action_once(*, actor: Actor, key: uuid.UUID, kind: str, stop_id: int, body: Any,
                     perform: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """``POST /api/v1/stops/{id}/arrive|complete|fail/`` with an ``Idempotency-Key``: run
    ``perform`` (the service and its serialized answer) once per key and return the
    first answer to every retry, like the driver actions. Returns (answer, replayed)."""
    request_hash = hashlib.sha256(json.dumps({"kind": kind, "stop": stop_id, "body": body}, sort_keys=True,
                                             default=str).encode()).hexdigest()
    stored = _stored_by_key(actor, key, request_hash)
    if stored is not None:
        return stored.response, True
    try:
        with transaction.atomic():
            action = DriverAction.objects.create(org=actor.org, key=key, driver=_driver(actor), kind=kind,
                                                 request_hash=request_hash, outcome="", response={})
            answer = perform()
            action.stop_id = stop_id
            action.outcome = "applied"
            action.response = answer
            action.save(update_fields=["stop", "outcome", "response"])
    except IntegrityError:
        stored = _stored_by_key(actor, key, request_hash)
        if stored is None:
            raise
        return stored.response, True
    return answer, False


def _driver(actor: Actor) -> Driver | None:
    return Driver.objects.filter(pk=actor.driver_id, org=actor.org).first() if actor.driver_id else None


def _apply(actor: Actor, data: DriverActionIn, request_hash: str, render_stop: Any) -> DriverAction:
    # Reserve the key first: a concurrent retry blocks here on the unique index until
    # we commit (then reads our result) or roll back (then does the work itself).
    action = DriverAction.objects.create(org=actor.org, key=data.id, driver=_driver(actor), kind=data.type,
                                         request_hash=request_hash, outcome="", response={},
                                         device_time=data.device_time)
    stop = dispatch_selectors.stop_list(actor=actor).filter(pk=data.stop).first()
    result: dict[str, Any]
    if stop is None and data.type == "complete":
        # Taken from this driver while the phone was offline: the route went to someone
        # else, or the stop was removed from it. The delivery still happened.
        stop = _stop_of_a_former_route(actor, data.stop) or _recover_removed_stop(actor, data)
    if stop is None:
        raise NotFound("Not found.")
    if data.type == "arrive":
        result = _arrive(actor, stop, occurred_at=data.device_time)
    elif data.type == "fail":
        result = _fail(actor, stop, data, action)
    else:
        result = _complete(actor, stop, data, action)
    stop = Stop.objects.select_related("order", "route").get(pk=result.pop("stop_id"))
    action.stop = stop
    action.outcome = result["outcome"]
    action.response = {"id": str(data.id), "type": data.type, **result,
                       "stop": render_stop(stop) if render_stop else {"id": stop.pk, "state": stop.state}}
    action.save(update_fields=["stop", "outcome", "response"])
    return action


def _arrive(actor: Actor, stop: Stop, occurred_at: datetime | None = None) -> dict[str, Any]:
    if stop.state != StopState.PENDING:
        # Arriving is a hint, not a commitment: an arrive synced after the stop moved on
        # (completed, cancelled, arrived from another device) changes nothing.
        return {"outcome": "ignored", "stop_id": stop.pk, "message": f"The stop is already {stop.state}."}
    # The phone's time of the action: a stop worked offline counts when it happened.
    stop = stop_services.stop_arrive(actor=actor, stop=stop, occurred_at=occurred_at)
    return {"outcome": "applied", "stop_id": stop.pk}


def _fail(actor: Actor, stop: Stop, data: DriverActionIn, action: DriverAction) -> dict[str, Any]:
    stop = stop_services.stop_fail(actor=actor, stop=stop, reason=data.reason or "", notes=data.notes,
                                   occurred_at=data.device_time)
    return {"outcome": "applied", "stop_id": stop.pk}


def _locked_stop(stop: Stop) -> tuple[Route | None, Stop]:
    """Route first, then stop: the order every writer takes them in."""
    route = Route.objects.select_for_update(no_key=True, of=("self",)).get(pk=stop.route_id) if stop.route_id else None
    return route, Stop.objects.select_for_update(no_key=True, of=("self",)).select_related("order").get(pk=stop.pk)


def _complete(actor: Actor, stop: Stop, data: DriverActionIn, action: DriverAction) -> dict[str, Any]:
    pod_in = data.pod or PodIn()
    route, stop = _locked_stop(stop)
    order = stop.order
    photos, signature = _resolve_media(actor, pod_in)
    captured = Captured(photos=len(photos), signature=signature is not None, recipient_name=pod_in.recipient_name,
                        notes=data.notes, pin=pod_in.pin, barcode=pod_in.barcode, age_verified=pod_in.age_verified)
    # The same rules whether the stop is open or not: the proof is kept either way.
    require(requirements_for(order), captured, order=order)

    events: list[NewEvent] = []
    exception: DispatchException | None = None
    flags: list[str] = []
    is_open = stop.state in (StopState.PENDING, StopState.ARRIVED)
    if is_open and order.state in (OrderState.DISPATCHED, OrderState.OUT_FOR_DELIVERY):
        if route is not None and route.status == RouteStatus.COMPLETED:
            _close_stop(actor, stop, order, data, deliver=True)  # a recovered stop on a finished route
        else:
            stop = stop_services.stop_complete(actor=actor, stop=stop, notes=data.notes, occurred_at=data.device_time)
    else:
        delivered = order.state == OrderState.COMPLETED and order.outcome == OrderOutcome.DELIVERED
        flags = ["double_completion" if delivered or stop.outcome == StopOutcome.SUCCEEDED else "completed_after_close"]
        if is_open:
            # This visit happened: close it, but leave the order as the other side closed it.
            _close_stop(actor, stop, order, data, deliver=False)
    pod = _record_pod(actor, stop, order, data, pod_in, photos, signature, action, flags)
    events.append(NewEvent(ev.POD_CAPTURED, "stop", stop.pk, pod_event_payload(pod, stop)))
    if flags:
        exception = _raise_exception(actor, stop, order, pod, action, flags[0], events)
    events_record(org=actor.org, actor=actor.label, events=events)
    result: dict[str, Any] = {"outcome": "exception" if exception else "applied", "stop_id": stop.pk, "pod": pod.pk}
    if exception is not None:
        result["exception"] = {"id": exception.pk, "kind": exception.kind, "message": exception.message}
    return result


def _resolve_media(actor: Actor, pod_in: PodIn) -> tuple[list[PodMedia], PodMedia | None]:
    wanted = [*pod_in.photos, *([pod_in.signature] if pod_in.signature else [])]
    found = {m.sha256: m for m in PodMedia.objects.filter(org=actor.org, sha256__in=wanted)}
    absent = [h for h in wanted if h not in found]
    if absent:
        raise BusinessRuleViolation("Upload the photos and signature before completing the stop.",
                                    code="media_missing", missing_media=absent)
    photos = [found[h] for h in dict.fromkeys(pod_in.photos)]
    if any(m.kind != MediaKind.PHOTO for m in photos):
        raise BusinessRuleViolation("A signature was sent as a photo.", code="media_kind_mismatch")
    signature = found[pod_in.signature] if pod_in.signature else None
    if signature is not None and signature.kind != MediaKind.SIGNATURE:
        raise BusinessRuleViolation("A photo was sent as the signature.", code="media_kind_mismatch")
    return photos, signature


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def _record_pod(actor: Actor, stop: Stop, order: Order, data: DriverActionIn, pod_in: PodIn,
                photos: list[PodMedia], signature: PodMedia | None, action: DriverAction,
                flags: list[str]) -> ProofOfDelivery:
    flags = list(flags)
    distance = None
    if pod_in.lat is None or pod_in.lng is None:
        flags.append("no_location")
    elif order.lat is not None and order.lng is not None:
        distance = round(distance_m(pod_in.lat, pod_in.lng, order.lat, order.lng), 1)
        if distance > settings.POD_FAR_FROM_ADDRESS_M:
            flags.append("far_from_address")
    if data.offline:
        flags.append("captured_offline")
    required = requirements_for(order)
    pod = ProofOfDelivery.objects.create(
        org=actor.org, stop=stop, order=order, driver=_driver(actor), action_key=data.id, signature=signature,
        recipient_name=pod_in.recipient_name, notes=data.notes,
        pin_verified=(pod_in.pin == delivery_pin(order)) if (required.pin or pod_in.pin) else None,
        barcode=pod_in.barcode, age_verified=pod_in.age_verified, device_time=data.device_time,
        lat=pod_in.lat, lng=pod_in.lng, accuracy_m=pod_in.accuracy_m, distance_m=distance, flags=flags,
    )
    pod.photos.set(photos)
    PodMedia.objects.filter(pk__in=[m.pk for m in photos] + ([signature.pk] if signature else []),
                            stop__isnull=True).update(stop=stop)
    return pod


def pod_event_payload(pod: ProofOfDelivery, stop: Stop) -> dict[str, Any]:
    return {"pod_id": pod.pk, "stop_id": stop.pk, "order_id": pod.order_id, "route_id": stop.route_id,
            "driver_id": pod.driver_id, "photos": pod.photos.count(), "signature": pod.signature_id is not None,
            "recipient_name": pod.recipient_name, "pin_verified": pod.pin_verified, "flags": pod.flags,
            "distance_m": pod.distance_m,
            "device_time": pod.device_time.isoformat() if pod.device_time else None}


_EXCEPTION_MESSAGES = {
    ExceptionKind.DOUBLE_COMPLETION: "The stop was completed again after it had been closed; both are kept.",
    ExceptionKind.COMPLETED_AFTER_CLOSE: "A delivery was recorded for an order that had already been closed.",
}


def _raise_exception(actor: Actor, stop: Stop, order: Order, pod: ProofOfDelivery, action: DriverAction, kind: str,
                     events: list[NewEvent]) -> DispatchException:
    exception = DispatchException.objects.create(
        org=actor.org, kind=kind, stop=stop, order=order, pod=pod, action=action, message=_EXCEPTION_MESSAGES[kind],
        details={"stop_state": stop.state, "stop_outcome": stop.outcome, "order_state": order.state,
                 "order_outcome": order.outcome, "driver_id": actor.driver_id},
    )
    events.append(NewEvent(ev.POD_EXCEPTION, "stop", stop.pk, {
        "exception_id": exception.pk, "kind": kind, "stop_id": stop.pk, "order_id": order.pk,
        "route_id": stop.route_id, "pod_id": pod.pk, "message": exception.message}))
    return exception


# --- a completion whose stop was taken away while the phone was offline ----------------


def _was_drivers_route(actor: Actor, route_id: int) -> bool:
    """Whether the log shows the route assigned to this driver at some point (every route
    event carries the driver it had)."""
    return Event.objects.filter(org=actor.org, subject_type="route", subject_id=str(route_id),
                                payload__driver_id=actor.driver_id).exists()


def _stop_of_a_former_route(actor: Actor, stop_id: int) -> Stop | None:
    """The stop, if its route was this driver's when they could have seen it and has
    since been given to another driver."""
    if not actor.driver_id:
        return None
    stop = Stop.objects.filter(pk=stop_id, org=actor.org).exclude(route=None).first()
    if stop is None or stop.route_id is None or not _was_drivers_route(actor, stop.route_id):
        return None
    return stop


def _recover_removed_stop(actor: Actor, data: DriverActionIn) -> Stop:
    """The driver completed a stop that dispatch took off their route while they were
    offline (removing a pending stop deletes it). The delivery happened: record it as a
    stop on the driver's route, closed as delivered, and cancel the order's newer open
    stop if there is one. Only for an order the log shows was on this driver's route."""
    if data.order is None or data.route is None or not actor.driver_id:
        raise NotFound("Not found.")
    route = Route.objects.filter(pk=data.route, org=actor.org, driver_id=actor.driver_id).first()
    order = Order.objects.filter(pk=data.order, org=actor.org).first()
    was_on_route = route is not None and order is not None and Event.objects.filter(
        org=actor.org, type=ev.ORDER_UNPLANNED, subject_type="order", subject_id=str(order.pk),
        payload__route_id=route.pk).exists()
    if not was_on_route:
        raise NotFound("Not found.")
    assert route is not None and order is not None
    open_states = [StopState.PENDING, StopState.ARRIVED]
    # Routes first (in id order: this path may hold two), then the order, then stops: the
    # order every writer takes its locks in, so a driver completing the other copy waits
    # instead of deadlocking with us.
    other_routes = set(Stop.objects.filter(order=order, state__in=open_states).exclude(route=None)
                       .values_list("route_id", flat=True))
    locked = {r.pk: r for r in Route.objects.select_for_update(no_key=True, of=("self",))
              .filter(pk__in=sorted({route.pk, *other_routes})).order_by("pk")}
    route = locked[route.pk]
    events: list[NewEvent] = []
    order = Order.objects.select_for_update(no_key=True).get(pk=order.pk)
    # The order's newer open stop (on another route, or this one) gives way.
    for other in Stop.objects.select_for_update(no_key=True).filter(order=order, state__in=open_states):
        stop_transition(other, "cancel")
        other.save(update_fields=["state", "outcome", "updated_at"])
        events.append(NewEvent(ev.STOP_CANCELLED, "stop", other.pk, {
            "stop_id": other.pk, "order_id": order.pk, "route_id": other.route_id, "kind": other.kind,
            "state": other.state, "outcome": other.outcome, "sequence": other.sequence,
            "reason": "delivered_by_another_driver"}))
        if other.route_id:
            route_bump_version(actor=actor, route_id=other.route_id, events=events, reason="delivered_elsewhere")
    now = timezone.now()
    sequence = (route.stops.aggregate(m=Max("sequence"))["m"] or 0) + 1
    stop = Stop.objects.create(org=actor.org, order=order, route=route, kind=StopKind.DELIVERY, sequence=sequence,
                               state=StopState.ARRIVED, arrived_at=data.device_time or now)
    if order.state in (OrderState.CREATED, OrderState.PLANNED, OrderState.DISPATCHED):
        # Walk the order to "out for delivery" along legal steps; the completion closes it.
        for step in ("plan", "dispatch", "start"):
            if order.state in ORDER_TRANSITIONS[step][0]:
                order_transition(order, step)
        order.save(update_fields=["state", "outcome", "updated_at"])
    route.refresh_from_db(fields=["version"])  # bumped above if the order's newer stop was on this route too
    route.version += 1
    route.save(update_fields=["version", "updated_at"])
    events.append(NewEvent(ev.ROUTE_UPDATED, "route", route.pk, {
        "route_id": route.pk, "status": route.status, "version": route.version, "reason": "offline_completion",
        "added": [order.pk]}))
    events_record(org=actor.org, actor=actor.label, events=events)
    return stop


def _close_stop(actor: Actor, stop: Stop, order: Order, data: DriverActionIn, *, deliver: bool) -> None:
    """Close a stop outside the route workflow (its route is finished, or its order was
    closed by someone else); deliver the order too when ``deliver``."""
    stop_transition(stop, "complete")
    stop.completed_at = timezone.now()
    stop.notes = data.notes
    stop.save()
    events = [NewEvent(ev.STOP_COMPLETED, "stop", stop.pk, {
        "stop_id": stop.pk, "order_id": order.pk, "route_id": stop.route_id, "kind": stop.kind, "state": stop.state,
        "outcome": stop.outcome, "sequence": stop.sequence, "failure_reason": ""})]
    if deliver:
        order_transition(order, "deliver")
        order.outcome = OrderOutcome.DELIVERED
        order.completed_at = stop.completed_at
        order.attempts += 1
        order.save()
        events.append(NewEvent(ev.ORDER_DELIVERED, "order", order.pk, {
            "order_id": order.pk, "external_id": order.external_id, "state": order.state, "outcome": order.outcome,
            "failure_reason": "", "stop_id": stop.pk, "route_id": stop.route_id}))
    events_record(org=actor.org, actor=actor.label, events=events)


# --- dispatcher exceptions ----------------------------------------------------------------


@transaction.atomic
def dispatch_exception_resolve(*, actor: Actor, exception: DispatchException, note: str = "") -> DispatchException:
    """A dispatcher has looked at the exception (called the customer, checked the photos).
    Nothing about the stop or the order changes here: resolving records the review."""
    exception = DispatchException.objects.select_for_update().get(pk=exception.pk, org=actor.org)
    if exception.resolved_at is not None:
        raise Conflict("This exception was already resolved.", code="already_resolved")
    exception.resolved_at = timezone.now()
    exception.details = {**exception.details, "resolved_by": actor.label, "resolution_note": note}
    exception.save(update_fields=["resolved_at", "details"])
    events_record(org=actor.org, actor=actor.label, events=[NewEvent(
        ev.POD_EXCEPTION_RESOLVED, "stop", exception.stop_id,
        {"exception_id": exception.pk, "kind": exception.kind, "stop_id": exception.stop_id,
         "order_id": exception.order_id, "route_id": exception.stop.route_id, "note": note})])
    return exception
