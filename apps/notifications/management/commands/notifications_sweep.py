"""Re-queue notifications a crash left behind (run every few minutes from cron or a timer)."""

from django.core.management.base import BaseCommand

from apps.notifications.services import messages_sweep


class Command(BaseCommand):
    help = "Re-queue customer messages stuck in 'sending' or whose job was lost (docs/notifications.md)."

    def handle(self, *args, **options):
        result = messages_sweep()
        self.stdout.write(f"stuck: {result['stuck']}, re-queued: {result['requeued']}")
