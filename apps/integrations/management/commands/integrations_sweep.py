"""Recover work whose worker died: inbound messages never processed, webhook deliveries
claimed but never recorded. Run it beside ``db_worker`` (``--every 60``) or from cron."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from apps.integrations.services.inbound import inbound_requeue_stuck
from apps.integrations.services.outbound import webhooks_sweep


class Command(BaseCommand):
    help = "Re-queue stuck inbound messages and webhook deliveries."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0, help="Repeat every N seconds (0: once)")

    def handle(self, *args, every: float = 0, **options):
        while True:
            inbound = inbound_requeue_stuck()
            outbound = webhooks_sweep()
            if inbound or outbound or not every:
                self.stdout.write(f"re-queued {inbound} inbound messages, {outbound} webhook deliveries")
            if not every:
                return
            time.sleep(every)
