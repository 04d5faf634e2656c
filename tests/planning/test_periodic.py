"""Planning's housekeeping runs as a periodic job from the workers' beat."""

import pytest
from django.conf import settings

from apps.planning.tasks import planning_housekeeping


@pytest.mark.django_db
def test_the_housekeeping_is_scheduled_and_runs_with_nothing_to_do(acme):
    assert settings.PERIODIC_JOBS["planning-housekeeping"]["task"] == "apps.planning.tasks.planning_housekeeping"
    assert planning_housekeeping.call() == {"recovered": 0, "late_risk": 0}
