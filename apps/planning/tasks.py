"""Background jobs of planning: thin wrappers around the services (queue "optimize")."""

from __future__ import annotations

from django.tasks import task


@task(queue_name="optimize")
def run_plan(plan_id: int) -> str | None:
    from .models import PlanKind, PlanRun
    from .services import plan_execute

    kind = PlanRun.objects.filter(pk=plan_id).values_list("kind", flat=True).first()
    if kind == PlanKind.REPLAN:
        from .replans import replan_execute

        plan = replan_execute(plan_id=plan_id)
    else:
        plan = plan_execute(plan_id=plan_id)
    return plan.status if plan else None


@task(queue_name="default")
def planning_housekeeping() -> dict[str, int]:
    """Periodic (settings.PERIODIC_JOBS): re-queue plan jobs whose worker died mid-solve
    and report a late-risk exception for each route whose ETAs run past a window."""
    from apps.accounts.models import Organization

    from .replans import late_risk_scan
    from .services import plan_recover_stale

    recovered = plan_recover_stale()
    late = [exc for org in Organization.objects.all() for exc in late_risk_scan(org=org)]
    return {"recovered": len(recovered), "late_risk": len(late)}
