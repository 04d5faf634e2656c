"""Hubs, vehicles and drivers: the organization's fixed assets and people."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from apps.accounts.actor import Actor
from apps.accounts.models import Role
from apps.accounts.services import member_create
from apps.common.exceptions import Conflict, ValidationFailed
from apps.events import types as ev
from apps.events.services import event_record
from apps.realtime.groups import user_group
from apps.realtime.publisher import send_control

from ..inputs import DriverIn, DriverPatch, HubIn, VehicleIn
from ..models import Driver, Hub, Vehicle


def _ref(actor: Actor, model: type, pk: int | None, field: str) -> Any:
    if pk is None:
        return None
    obj = model.objects.filter(org=actor.org, pk=pk).first()
    if obj is None:
        raise ValidationFailed({field: [f"No such {model._meta.verbose_name}."]})
    return obj


def _save_unique(obj: Any, field: str, message: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise Conflict(message, code="duplicate", field=field) from None


def _hub_fields(data: HubIn) -> dict[str, Any]:
    return {**data.model_dump(mode="json"), "opening_hours": data.opening_hours.as_json()}


@transaction.atomic
def hub_create(*, actor: Actor, data: HubIn) -> Hub:
    hub = Hub(org=actor.org, **_hub_fields(data))
    _save_unique(hub, "code", f"A hub with code {data.code!r} already exists.")
    event_record(org=actor.org, actor=actor.label, type=ev.HUB_CREATED, subject_type="hub", subject_id=hub.pk,
                 payload={"hub_id": hub.pk, "code": hub.code})
    return hub


@transaction.atomic
def hub_update(*, actor: Actor, hub: Hub, data: HubIn) -> Hub:
    for name, value in _hub_fields(data).items():
        setattr(hub, name, value)
    _save_unique(hub, "code", f"A hub with code {data.code!r} already exists.")
    event_record(org=actor.org, actor=actor.label, type=ev.HUB_UPDATED, subject_type="hub", subject_id=hub.pk,
                 payload={"hub_id": hub.pk, "code": hub.code})
    return hub


def _vehicle_fields(actor: Actor, data: VehicleIn) -> dict[str, Any]:
    fields = data.model_dump(exclude={"home_hub"})
    fields["home_hub"] = _ref(actor, Hub, data.home_hub, "home_hub")
    return fields


@transaction.atomic
def vehicle_create(*, actor: Actor, data: VehicleIn) -> Vehicle:
    vehicle = Vehicle(org=actor.org, **_vehicle_fields(actor, data))
    _save_unique(vehicle, "plate", f"A vehicle with plate {data.plate!r} already exists.")
    event_record(org=actor.org, actor=actor.label, type=ev.VEHICLE_CREATED, subject_type="vehicle",
                 subject_id=vehicle.pk, payload={"vehicle_id": vehicle.pk})
    return vehicle


@transaction.atomic
def vehicle_update(*, actor: Actor, vehicle: Vehicle, data: VehicleIn) -> Vehicle:
    for name, value in _vehicle_fields(actor, data).items():
        setattr(vehicle, name, value)
    _save_unique(vehicle, "plate", f"A vehicle with plate {data.plate!r} already exists.")
    event_record(org=actor.org, actor=actor.label, type=ev.VEHICLE_UPDATED, subject_type="vehicle",
                 subject_id=vehicle.pk, payload={"vehicle_id": vehicle.pk})
    return vehicle


@transaction.atomic
def driver_create(*, actor: Actor, data: DriverIn) -> Driver:
    """A driver is a person who logs in to the driver app: user, membership and profile together."""
    home_hub = _ref(actor, Hub, data.home_hub, "home_hub")
    vehicle = _ref(actor, Vehicle, data.current_vehicle, "current_vehicle")
    first, _, last = data.name.partition(" ")
    membership = member_create(org=actor.org, username=data.username, password=data.password, role=Role.DRIVER,
                               first_name=first, last_name=last)
    driver = Driver.objects.create(
        org=actor.org, user=membership.user, name=data.name, phone=data.phone, shift_start=data.shift_start,
        shift_end=data.shift_end, home_hub=home_hub, current_vehicle=vehicle,
    )
    event_record(org=actor.org, actor=actor.label, type=ev.DRIVER_CREATED, subject_type="driver", subject_id=driver.pk,
                 payload={"driver_id": driver.pk, "name": driver.name})
    return driver


@transaction.atomic
def driver_update(*, actor: Actor, driver: Driver, patch: DriverPatch) -> Driver:
    sent = patch.model_fields_set
    if "home_hub" in sent:
        driver.home_hub = _ref(actor, Hub, patch.home_hub, "home_hub")
    if "current_vehicle" in sent:
        driver.current_vehicle = _ref(actor, Vehicle, patch.current_vehicle, "current_vehicle")
    for name in ("name", "phone", "shift_start", "shift_end", "active"):
        if name in sent and getattr(patch, name) is not None:
            setattr(driver, name, getattr(patch, name))
    if driver.shift_end <= driver.shift_start:
        raise ValidationFailed({"shift_end": ["shift_end must be after shift_start"]})
    if "active" in sent and patch.active is False:
        # A deactivated driver can no longer log in; the account is kept for history.
        driver.on_duty = False
        driver.user.is_active = False
        driver.user.save(update_fields=["is_active"])
        user_id = driver.user_id
        transaction.on_commit(lambda: send_control(user_group(user_id), {
            "action": "revoke", "message": "Your driver account was deactivated."}))
    elif patch.active:
        driver.user.is_active = True
        driver.user.save(update_fields=["is_active"])
    driver.save()
    event_record(org=actor.org, actor=actor.label, type=ev.DRIVER_UPDATED, subject_type="driver", subject_id=driver.pk,
                 payload={"driver_id": driver.pk, "changed": sorted(sent)})
    return driver


@transaction.atomic
def driver_set_duty(*, actor: Actor, driver: Driver, on_duty: bool) -> Driver:
    driver = Driver.objects.select_for_update().get(pk=driver.pk)
    if on_duty and not driver.active:
        raise Conflict("An inactive driver cannot go on duty.", code="driver_inactive")
    if driver.on_duty != on_duty:
        driver.on_duty = on_duty
        driver.save(update_fields=["on_duty", "updated_at"])
        event_record(org=actor.org, actor=actor.label, type=ev.DRIVER_DUTY_CHANGED, subject_type="driver",
                     subject_id=driver.pk, payload={"driver_id": driver.pk, "on_duty": on_duty})
    return driver
