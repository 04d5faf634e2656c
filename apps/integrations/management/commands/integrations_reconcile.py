"""Pull recent orders from every Shopify and WooCommerce connection with API credentials
(run from cron, e.g. every 15 minutes). Each connection's errors are reported, not fatal."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.common.exceptions import DomainError
from apps.integrations.models import Connection, ConnectionKind
from apps.integrations.services.reconcile import connection_reconcile


class Command(BaseCommand):
    help = "Reconcile recent orders of every store connection that has API credentials."

    def handle(self, *args, **options):
        connections = Connection.objects.filter(active=True, kind__in=[ConnectionKind.SHOPIFY, ConnectionKind.WOOCOMMERCE])
        for connection in connections.exclude(api={}):
            try:
                result = connection_reconcile(connection=connection)
            except DomainError as exc:
                self.stderr.write(f"{connection.source}: {exc.message}")
                continue
            self.stdout.write(f"{connection.source}: {result.fetched} fetched, {result.queued} new, {result.known} known")
