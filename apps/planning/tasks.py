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
