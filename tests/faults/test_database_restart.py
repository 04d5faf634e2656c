"""PostgreSQL restarts under a running server: requests fail with a clean 503 JSON error
during the outage and succeed after, and no order is half-written.

Runs against a private PostgreSQL (tests/faults/private_postgres.py) and a real Daphne
process, the way production meets a database failover.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from tests.factories import order_payload
from tests.faults.private_postgres import PrivatePostgres, postgres_bin
from tests.realtime.servers import ROOT, asgi_servers

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = pytest.mark.skipif(
    postgres_bin() is None and not _CI, reason="needs PostgreSQL server binaries (CI machines have them)"
)

SETUP = """
from apps.accounts.models import Organization
from apps.accounts.services import api_client_create
org = Organization.objects.create(name="Acme Deliveries", slug="acme")
_, key = api_client_create(org=org, name="Shop", scopes=["orders:write", "orders:read"])
print("KEY=" + key)
"""

COUNT = """
from apps.dispatch.models import Order, OrderItem
from apps.events.models import Event
print("COUNTS=" + ",".join(str(n) for n in (Order.objects.count(), OrderItem.objects.count(),
      Event.objects.filter(type="order.created").count())))
"""


def _manage(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("LASTMILE_TEST_DB", None)
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _request(method: str, url: str, body: object | None = None, key: str = "") -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def _counts(url: str) -> tuple[int, int, int]:
    line = next(line for line in _manage(url, "shell", "-c", COUNT).splitlines() if line.startswith("COUNTS="))
    orders, items, events = (int(n) for n in line.removeprefix("COUNTS=").split(","))
    return orders, items, events


def test_requests_get_a_clean_503_while_postgres_is_down_and_succeed_after():
    pg = PrivatePostgres()
    pg.init()
    try:
        _manage(pg.url, "migrate", "--no-input", "-v0")
        key = next(line for line in _manage(pg.url, "shell", "-c", SETUP).splitlines()
                   if line.startswith("KEY=")).removeprefix("KEY=")
        # The connection pool, as in production: connections broken by the restart must be
        # noticed and replaced before a request gets one.
        with asgi_servers(1, env={"DATABASE_URL": pg.url}) as (server,):
            status, _, _ = _request("POST", f"{server.http}/api/v1/orders/", order_payload(external_id="before"), key)
            assert status == 201

            pg.stop("immediate")
            pg.wait_until_down()

            status, body, headers = _request("POST", f"{server.http}/api/v1/orders/",
                                             order_payload(external_id="during"), key)
            assert status == 503, body
            assert body["code"] == "service_unavailable"
            assert headers.get("Retry-After") == "5"
            status, body, _ = _request("GET", f"{server.http}/readyz")
            assert status == 503 and body["checks"]["database"]["ok"] is False
            status, _, _ = _request("GET", f"{server.http}/healthz")
            assert status == 200  # liveness stays up: restarting the process would not help

            pg.start()

            status, body, _ = _request("POST", f"{server.http}/api/v1/orders/", order_payload(external_id="during"), key)
            assert status == 201, body
            status, _, _ = _request("GET", f"{server.http}/readyz")
            assert status == 200

            # A 200-order bulk request cut off by a crash is all or nothing.
            bulk = {"orders": [order_payload(external_id=f"bulk-{i}") for i in range(200)]}
            outcome: dict[str, object] = {}

            def post_bulk() -> None:
                outcome["status"], outcome["body"], _ = _request(
                    "POST", f"{server.http}/api/v1/orders/bulk/", bulk, key)

            poster = threading.Thread(target=post_bulk)
            poster.start()
            pg.stop("immediate")
            poster.join(60)
            pg.wait_until_down()
            pg.start()
        orders, items, events = _counts(pg.url)
        committed = outcome["status"] in (200, 201)
        assert outcome["status"] in (200, 201, 503), outcome
        assert orders == 2 + (200 if committed else 0)
        assert events == orders  # every stored order has its event: nothing half-written
        per_order_items = len(order_payload(external_id="x")["items"])
        assert items == orders * per_order_items
    finally:
        pg.destroy()
