"""The integrations sweep and reconciliation run as periodic jobs from the workers' beat."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from apps.common.schedule import periodic_jobs_enqueue_due
from apps.integrations.tasks import integrations_sweep, reconcile_all


@pytest.mark.django_db
def test_the_sweep_and_the_reconciliation_are_scheduled():
    jobs = {"integrations-sweep", "integrations-reconcile", "inbound-retention"}
    assert jobs <= set(settings.PERIODIC_JOBS)
    enqueued = periodic_jobs_enqueue_due(now=timezone.now())
    assert jobs <= set(enqueued)
    paths = set(DBTaskResult.objects.values_list("task_path", flat=True))
    assert {"apps.integrations.tasks.integrations_sweep", "apps.integrations.tasks.reconcile_all",
            "apps.integrations.tasks.inbound_retention"} <= paths


@pytest.mark.django_db
def test_the_sweep_runs_with_nothing_to_do_and_reconciliation_skips_connections_without_api_credentials(acme):
    from apps.integrations.services.connections import connection_create

    connection_create(org=acme, kind="shopify", name="Acme Shop", store="acme.myshopify.com", secret="s")
    assert integrations_sweep.call() == {"inbound": 0, "outbound": 0}
    assert reconcile_all.call() == 0
