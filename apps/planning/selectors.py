"""Reads of planning: always from the actor's organization."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.actor import Actor

from .models import OpsException, PlanningPolicy, PlanRun


def plan_list(*, actor: Actor, params=None) -> QuerySet[PlanRun]:
    qs = PlanRun.objects.filter(org=actor.org).select_related("hub")
    params = params or {}
    if params.get("date"):
        qs = qs.filter(date=params["date"])
    if params.get("kind"):
        qs = qs.filter(kind=params["kind"])
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    return qs


def exception_list(*, actor: Actor, params=None) -> QuerySet[OpsException]:
    qs = OpsException.objects.filter(org=actor.org)
    params = params or {}
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    return qs


def policy_of(*, org) -> PlanningPolicy:
    policy = PlanningPolicy.objects.filter(org=org).first()
    return policy or PlanningPolicy(org=org)
