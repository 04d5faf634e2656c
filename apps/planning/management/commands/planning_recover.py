"""Re-queue plan and replan jobs whose worker died mid-solve (run it from cron every minute).

The same recovery also runs whenever a plan is requested or an exception reported."""

from django.core.management.base import BaseCommand

from apps.planning.services import plan_recover_stale


class Command(BaseCommand):
    help = "Re-queue plan/replan jobs that have been running far longer than their time limit."

    def handle(self, *args, **options):
        recovered = plan_recover_stale()
        self.stdout.write(f"re-queued {len(recovered)} plan job(s): {recovered}")
