"""Plan the day: request a draft, run the optimizer in a background job with progress,
publish the draft as routes through the route services.

A plan run is a row; the job claims it with a conditional update, so a task that
runs twice (a retried or re-queued job) does the work once, and a worker killed
mid-solve leaves a row that ``plan_recover_stale`` puts back in the queue.
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.common.exceptions import BusinessRuleViolation, Conflict, ValidationFailed
from apps.common.jobs import job_is_rerun, rerun_claim_cutoff
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Driver, Hub, Order, OrderState, Route, RouteStatus
from apps.dispatch.optimization.engines import Progress
from apps.dispatch.optimization.solve import solve
from apps.dispatch.services.routes import route_create, route_publish
from apps.events import types as ev
from apps.events.services import NewEvent, event_record, events_record

from .inputs import PlanIn
from .models import PlanKind, PlanRun, PlanStatus
from .problem_input import day_input, epoch_of, plan_to_json

log = logging.getLogger(__name__)

# Progress reaches the event log (and so every console) at most this often.
PROGRESS_EVERY_S = 1.0
# A run still "running" this long past its time limit lost its worker.
STALE_AFTER_S = 60.0
# Job priority of a replan (django.tasks: -100 ... 100, default 0).
REPLAN_PRIORITY = 50


def plan_payload(plan: PlanRun, **extra: Any) -> dict[str, Any]:
    return {"plan_id": plan.pk, "kind": plan.kind, "status": plan.status, "stage": plan.stage,
            "date": plan.date.isoformat(), "hub_id": plan.hub_id, **extra}


def _day_orders(actor: Actor, hub: Hub, day: date, order_ids: list[int]) -> list[Order]:
    if order_ids:
        found = {o.pk: o for o in Order.objects.filter(org=actor.org, pk__in=order_ids)}
        missing = [i for i in order_ids if i not in found]
        if missing:
            raise ValidationFailed({"orders": [f"No such order: {', '.join(map(str, missing))}."]})
        taken = [i for i in order_ids if found[i].state != OrderState.CREATED]
        if taken:
            raise BusinessRuleViolation(f"Orders {', '.join(map(str, taken))} are already planned or finished.",
                                        code="orders_not_plannable", orders=taken)
        return [found[i] for i in order_ids]
    start = epoch_of(hub, day)
    end = start + timedelta(days=1)
    return list(Order.objects.filter(org=actor.org, state=OrderState.CREATED).filter(Q(hub=hub) | Q(hub=None))
                .filter(Q(window_start__lt=end, window_end__gt=start) | Q(window_start=None, window_end=None)
                        | Q(window_start=None, window_end__gt=start) | Q(window_start__lt=end, window_end=None))
                .order_by("id"))


def _day_drivers(actor: Actor, hub: Hub, day: date, driver_ids: list[int]) -> list[Driver]:
    base = Driver.objects.filter(org=actor.org, active=True).select_related("current_vehicle")
    if driver_ids:
        found = {d.pk: d for d in base.filter(pk__in=driver_ids)}
        missing = [i for i in driver_ids if i not in found]
        if missing:
            raise ValidationFailed({"drivers": [f"No such active driver: {', '.join(map(str, missing))}."]})
        without = [i for i in driver_ids if found[i].current_vehicle is None]
        if without:
            raise BusinessRuleViolation(f"Drivers {', '.join(map(str, without))} have no vehicle.",
                                        code="driver_without_vehicle", drivers=without)
        return [found[i] for i in driver_ids]
    busy = Route.objects.filter(org=actor.org, date=day).exclude(status=RouteStatus.COMPLETED).values("driver_id")
    return list(base.filter(home_hub=hub).exclude(current_vehicle=None).exclude(pk__in=busy).order_by("id"))


@transaction.atomic
def plan_request(*, actor: Actor, data: PlanIn) -> PlanRun:
    """Queue a plan of the day; the job runs after commit."""
    plan_recover_stale()  # a cheap query; also `manage.py planning_recover` from cron
    hub = Hub.objects.filter(org=actor.org, pk=data.hub).first()
    if hub is None:
        raise ValidationFailed({"hub": ["No such hub."]})
    if hub.lat is None or hub.lng is None:
        raise BusinessRuleViolation("The hub has no coordinates to start routes from.", code="hub_not_located")
    day = date.fromisoformat(data.date)
    # Validate the selection now, so a bad request is a 400/422, not a failed job.
    drivers = _day_drivers(actor, hub, day, list(data.drivers))
    _day_orders(actor, hub, day, list(data.orders))
    plan = PlanRun.objects.create(
        org=actor.org, hub=hub, date=day, kind=PlanKind.DAY, time_limit_s=data.time_limit_s,
        driver_ids=[d.pk for d in drivers] if data.drivers else [], order_ids=list(data.orders),
        requested_by=actor.label,
    )
    event_record(org=actor.org, actor=actor.label, type=ev.PLAN_REQUESTED, subject_type="plan", subject_id=plan.pk,
                 payload=plan_payload(plan, time_limit_s=plan.time_limit_s))
    _enqueue(plan)
    return plan


def _enqueue(plan: PlanRun, *, delay_s: float = 0.0) -> None:
    from .tasks import run_plan

    # A replan is a van on the road without its stops: workers take it before the
    # notifications and webhooks queued ahead of it (they run in priority order).
    # Measured in bench/replan.py: behind the backlog a breakdown's job waited 9 s.
    priority = REPLAN_PRIORITY if plan.kind == PlanKind.REPLAN else 0

    def send() -> None:
        options: dict[str, Any] = {"priority": priority}
        if delay_s > 0:
            options["run_after"] = timezone.now() + timedelta(seconds=delay_s)
        run_plan.using(**options).enqueue(plan.pk)

    transaction.on_commit(send)


def plan_claim(*, plan_id: int) -> PlanRun | None:
    """Take a queued run for this worker. None if another worker has it or it is finished."""
    now = timezone.now()
    claimable = Q(status=PlanStatus.QUEUED)
    if job_is_rerun():  # this job's worker died mid-run: its RUNNING claim is abandoned
        claimable |= Q(status=PlanStatus.RUNNING, started_at__lt=rerun_claim_cutoff(now=now))
    claimed = PlanRun.objects.filter(claimable, pk=plan_id).update(
        status=PlanStatus.RUNNING, stage="loading", started_at=now, attempts=F("attempts") + 1, updated_at=now)
    if not claimed:
        return None
    return PlanRun.objects.select_related("hub", "org").get(pk=plan_id)


class _Reporter:
    """Writes progress to the row and the event log, at most once a second."""

    def __init__(self, plan: PlanRun) -> None:
        self.plan, self.last = plan, 0.0

    def stage(self, stage: str, **progress: Any) -> None:
        self.plan.stage = stage
        self.plan.progress = {**self.plan.progress, **progress}
        self._save(force=True)

    def __call__(self, p: Progress) -> None:
        self.plan.stage = "solving"
        self.plan.progress = {"elapsed_s": round(p.elapsed_s, 2), "time_left_s": round(p.time_left_s, 2),
                              "best_cost": p.best_cost, "engine": p.engine}
        self._save(force=False)

    def _save(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        plan = self.plan
        with transaction.atomic():
            PlanRun.objects.filter(pk=plan.pk).update(stage=plan.stage, progress=plan.progress, updated_at=timezone.now())
            event_record(org=plan.org, actor="system", type=ev.PLAN_PROGRESS, subject_type="plan", subject_id=plan.pk,
                         payload=plan_payload(plan, progress=plan.progress))


def plan_execute(*, plan_id: int) -> PlanRun | None:
    """The job: build the problem, solve it with progress, store the draft. Never raises."""
    plan = plan_claim(plan_id=plan_id)
    if plan is None:
        return None
    report = _Reporter(plan)
    try:
        from apps.accounts.actor import system_actor

        actor = system_actor(plan.org)
        drivers = _day_drivers(actor, plan.hub, plan.date, list(plan.driver_ids))
        orders = _day_orders(actor, plan.hub, plan.date, list(plan.order_ids))
        report.stage("matrix", stops=len(orders), vehicles=len(drivers), time_left_s=plan.time_limit_s)
        # Planning today starts from now; another day (tomorrow, or a past day replayed) from its start.
        now = timezone.now()
        today = now.astimezone(epoch_of(plan.hub, plan.date).tzinfo).date() == plan.date
        pi = day_input(hub=plan.hub, day=plan.date, drivers=drivers, orders=orders, now=now if today else None)
        report.stage("solving", time_left_s=plan.time_limit_s)
        result = solve(pi.problem, time_limit_s=plan.time_limit_s, on_progress=report)
        draft = plan_to_json(pi, result)
    except Exception as exc:  # the job must end in a state the console can show
        log.exception("plan %s failed", plan_id)
        with transaction.atomic():
            PlanRun.objects.filter(pk=plan.pk).update(status=PlanStatus.FAILED, stage="failed", error=str(exc)[:2000],
                                                      finished_at=timezone.now())
            plan.status, plan.stage = PlanStatus.FAILED, "failed"
            event_record(org=plan.org, actor="system", type=ev.PLAN_FAILED, subject_type="plan", subject_id=plan.pk,
                         payload=plan_payload(plan, error=str(exc)[:200]))
        return plan
    with transaction.atomic():
        plan.status, plan.stage, plan.result, plan.finished_at = PlanStatus.READY, "done", draft, timezone.now()
        plan.progress = {**plan.progress, "time_left_s": 0, "best_cost": result.cost, "engine": result.engine}
        PlanRun.objects.filter(pk=plan.pk, status=PlanStatus.RUNNING).update(
            status=plan.status, stage=plan.stage, result=draft, progress=plan.progress, finished_at=plan.finished_at,
            updated_at=plan.finished_at)
        event_record(org=plan.org, actor="system", type=ev.PLAN_READY, subject_type="plan", subject_id=plan.pk,
                     payload=plan_payload(plan, totals=draft["totals"]))
    return plan


def _locked(actor: Actor, plan: PlanRun) -> PlanRun:
    return PlanRun.objects.select_for_update().select_related("hub").get(pk=plan.pk, org=actor.org)


@transaction.atomic
def plan_publish(*, actor: Actor, plan: PlanRun) -> PlanRun:
    """Create and publish one route per planned driver, all or nothing.

    Routes go through ``route_create`` and ``route_publish``, so every order moves
    through its lifecycle and every event is recorded as if a dispatcher had built
    the routes by hand; drivers receive them through the live pipeline.
    """
    plan = _locked(actor, plan)
    if plan.kind != PlanKind.DAY:
        raise Conflict("A replan is applied, not published.", code="plan_kind", kind=plan.kind)
    if plan.status != PlanStatus.READY:
        raise Conflict(f"Only a ready plan can be published; this one is {plan.status}.", code="plan_not_ready",
                       current_state=plan.status)
    route_ids = []
    for spec in plan.result.get("routes", []):
        if not spec["stops"]:
            continue
        data = RouteIn(hub=plan.hub_id, date=plan.date.isoformat(), name=f"{spec['driver_name']} {plan.date:%d %b}",
                       driver=spec["driver_id"], vehicle=spec["vehicle_id"], planned_start=spec["start"],
                       orders=[s["order_id"] for s in spec["stops"]])
        route = route_create(actor=actor, data=data)
        route_publish(actor=actor, route=route)
        route_ids.append(route.pk)
    plan.status, plan.route_ids, plan.published_at = PlanStatus.PUBLISHED, route_ids, timezone.now()
    plan.save(update_fields=["status", "route_ids", "published_at", "updated_at"])
    events_record(org=actor.org, actor=actor.label, events=[
        NewEvent(ev.PLAN_PUBLISHED, "plan", plan.pk, plan_payload(plan, route_ids=route_ids))])
    return plan


@transaction.atomic
def plan_discard(*, actor: Actor, plan: PlanRun) -> PlanRun:
    plan = _locked(actor, plan)
    if plan.status not in (PlanStatus.READY, PlanStatus.FAILED, PlanStatus.QUEUED):
        raise Conflict(f"A {plan.status} plan cannot be discarded.", code="plan_not_discardable",
                       current_state=plan.status)
    plan.status = PlanStatus.DISCARDED
    plan.save(update_fields=["status", "updated_at"])
    event_record(org=actor.org, actor=actor.label, type=ev.PLAN_DISCARDED, subject_type="plan", subject_id=plan.pk,
                 payload=plan_payload(plan))
    return plan


def plan_recover_stale(*, now=None) -> list[int]:
    """Put runs whose worker died mid-solve back in the queue (durable jobs).

    A run is stale when it has been "running" for longer than its time limit plus
    ``STALE_AFTER_S``; the conditional update makes two recoverers harmless.
    """
    now = now or timezone.now()
    recovered = []
    for plan in PlanRun.objects.filter(status=PlanStatus.RUNNING).only("pk", "time_limit_s", "started_at"):
        if plan.started_at and plan.started_at + timedelta(seconds=plan.time_limit_s + STALE_AFTER_S) < now:
            with transaction.atomic():
                if PlanRun.objects.filter(pk=plan.pk, status=PlanStatus.RUNNING).update(
                        status=PlanStatus.QUEUED, stage="requeued", updated_at=now):
                    _enqueue(plan)
                    recovered.append(plan.pk)
    return recovered
