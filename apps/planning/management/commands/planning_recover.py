"""The planning app's periodic work (run it from cron every minute):

* re-queue plan and replan jobs whose worker died mid-solve (this also runs whenever a
  plan is requested or an exception reported);
* report a late-risk exception for each route whose ETAs run past a window.
"""

from django.core.management.base import BaseCommand

from apps.accounts.models import Organization
from apps.planning.replans import late_risk_scan
from apps.planning.services import plan_recover_stale


class Command(BaseCommand):
    help = "Re-queue stalled plan jobs and report routes at risk of being late."

    def handle(self, *args, **options):
        recovered = plan_recover_stale()
        self.stdout.write(f"re-queued {len(recovered)} plan job(s): {recovered}")
        late = [exc for org in Organization.objects.all() for exc in late_risk_scan(org=org)]
        self.stdout.write(f"reported {len(late)} late-risk exception(s)")
