"""The reports API: figures with filters, per day, per hub/driver/source, the orders
behind a figure, CSV exports; and who may see what (Carol, partner keys, drivers)."""

from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_client_create
from apps.dispatch.models import Order
from apps.reports.summary import summary_rebuild_day
from tests.reports.conftest import D1, D2

RANGE = {"from": D1.isoformat(), "to": D2.isoformat()}


def key_client(org, *, scopes=("reports:read",), source="") -> APIClient:
    _, key = api_client_create(org=org, name="Partner", scopes=list(scopes), order_source=source)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_dave_reads_the_kpis_of_a_range(as_dave, history):
    body = as_dave.get("/api/v1/reports/kpis/", RANGE).json()

    assert body["filters"] == {"from": "2026-11-23", "to": "2026-11-24", "hub": None, "driver": None, "source": None}
    assert (body["kpis"]["delivered"], body["kpis"]["on_time_rate"]) == (5, 0.75)
    assert body["freshness"]["stale_days"] == 0
    assert body["webhooks"] == {"available": True, "success_rate": None, "attempted": 0, "succeeded": 0, "dead": 0,
                                "pending": 0}  # no endpoint subscribed: nothing sent, nothing failed


def test_a_filter_changes_the_numbers(as_dave, history):
    dan = as_dave.get("/api/v1/reports/kpis/", {**RANGE, "driver": history["dan"].pk}).json()["kpis"]
    monday = as_dave.get("/api/v1/reports/kpis/", {**RANGE, "to": D1.isoformat()}).json()["kpis"]

    assert (dan["attempts"], dan["delivered"]) == (2, 2)
    assert monday["attempts"] == 5


def test_the_series_has_one_entry_per_day(as_dave, history):
    body = as_dave.get("/api/v1/reports/series/", RANGE).json()

    assert [(d["day"], d["delivered"], d["failed"]) for d in body["results"]] == [
        ("2026-11-23", 4, 1), ("2026-11-24", 1, 0)]


def test_breakdowns_per_source_and_failures_per_reason(as_dave, history):
    sources = as_dave.get("/api/v1/reports/breakdown/", {**RANGE, "by": "source"}).json()["results"]
    reasons = as_dave.get("/api/v1/reports/breakdown/", {**RANGE, "by": "reason"}).json()["results"]

    assert [(r["label"], r["attempts"]) for r in sources] == [("shop", 4), ("erp", 2)]
    assert reasons[0] == {"key": "recipient_absent", "label": "Recipient absent", "failed": 1, "share": 1.0}


def test_drill_down_lists_the_orders_behind_a_figure(as_dave, history):
    late = as_dave.get("/api/v1/reports/orders/", {**RANGE, "metric": "late"}).json()
    failed = as_dave.get("/api/v1/reports/orders/", {**RANGE, "metric": "failed:recipient_absent"}).json()
    cancelled = as_dave.get("/api/v1/reports/orders/", {**RANGE, "metric": "cancelled"}).json()

    assert [(r["reference"], r["punctuality"], r["pod_missing"]) for r in late["results"]] == [("o3", "late", ["photo"])]
    assert [(r["reference"], r["attempt"], r["driver"]) for r in failed["results"]] == [("o2", "first", "Bob Baker")]
    assert sorted(r["reference"] for r in cancelled["results"]) == ["o4", "o8"]


def test_drill_down_is_paginated_newest_first(as_dave, history):
    first = as_dave.get("/api/v1/reports/orders/", {**RANGE, "metric": "delivered", "page_size": 3}).json()
    second = as_dave.get(first["next"]).json()

    refs = [r["reference"] for r in first["results"] + second["results"]]
    assert len(first["results"]) == 3 and second["next"] is None
    assert sorted(refs) == ["o1", "o2", "o3", "o5", "o6"]
    assert refs[0] == "o2"  # the retry on Tuesday is the newest attempt


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "23.11.2026"}, "from"),
    ({"from": "2026-11-24", "to": "2026-11-23"}, "to"),
    ({"from": "2020-01-01", "to": "2026-11-23"}, "from"),
    ({"hub": "abc"}, "hub"),
    ({"hub": "999999"}, "hub"),
    ({"metric": "everything"}, "metric"),
])
def test_bad_filters_are_a_400_naming_the_field(as_dave, history, params, field):
    response = as_dave.get("/api/v1/reports/orders/", params)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"]


def test_every_table_exports_as_csv(as_dave, history):
    for table in ("summary", "daily", "hubs", "drivers", "sources", "reasons", "orders"):
        response = as_dave.get("/api/v1/reports/export/", {**RANGE, "table": table})
        assert response.status_code == 200, table
        rows = csv_rows(response)
        assert len(rows) >= 2, table
        name = "orders-attempts" if table == "orders" else table
        assert f'filename="lastmile-{name}-2026-11-23-2026-11-24.csv"' in response["Content-Disposition"]
    summary = csv_rows(as_dave.get("/api/v1/reports/export/", {**RANGE, "table": "summary"}))
    assert dict(zip(summary[0], summary[1], strict=True))["on_time_rate"] == "0.75"


def test_csv_cells_cannot_become_spreadsheet_formulas(as_dave, history):
    Order.objects.filter(reference="o3").update(customer_name='=HYPERLINK("http://evil","Click")')
    Order.objects.filter(reference="o1").update(customer_name="Müller, Anna", reference='-2+3 "quoted"')

    rows = csv_rows(as_dave.get("/api/v1/reports/export/", {**RANGE, "table": "orders", "metric": "delivered"}))

    header = rows[0]
    by_name = {r[header.index("customer_name")]: r for r in rows[1:]}
    assert "'=HYPERLINK(\"http://evil\",\"Click\")" in by_name
    assert by_name["Müller, Anna"][header.index("reference")] == "'-2+3 \"quoted\""


def test_an_unknown_export_table_is_a_json_400(as_dave, history):
    response = as_dave.get("/api/v1/reports/export/", {"table": "passwords"})

    assert response.status_code == 400
    assert response.json()["fields"]["table"]


# --- who sees what -------------------------------------------------------------------


def test_carol_sees_nothing_of_acme(as_carol, history, acme_hub):
    kpis = as_carol.get("/api/v1/reports/kpis/", RANGE).json()["kpis"]
    orders = as_carol.get("/api/v1/reports/orders/", RANGE).json()["results"]
    drivers = as_carol.get("/api/v1/reports/breakdown/", {**RANGE, "by": "driver"}).json()["results"]
    options = as_carol.get("/api/v1/reports/options/").json()
    export = csv_rows(as_carol.get("/api/v1/reports/export/", {**RANGE, "table": "orders"}))

    assert (kpis["attempts"], kpis["cancelled"]) == (0, 0)
    assert orders == [] and drivers == [] and export[1:] == []
    assert options == {"hubs": [], "drivers": [], "sources": [], "partner_source": None}
    assert as_carol.get("/api/v1/reports/kpis/", {"hub": acme_hub.pk}).status_code == 400  # "No such hub."


def test_a_partner_key_sees_only_its_own_source(acme, history):
    erp = key_client(acme, source="erp")

    kpis = erp.get("/api/v1/reports/kpis/", RANGE).json()
    orders = erp.get("/api/v1/reports/orders/", RANGE).json()["results"]
    options = erp.get("/api/v1/reports/options/").json()

    assert kpis["filters"]["source"] == "erp"
    assert (kpis["kpis"]["attempts"], kpis["kpis"]["cancelled"], kpis["kpis"]["routes"]) == (2, 1, None)
    assert sorted(r["reference"] for r in orders) == ["o3", "o6"]
    assert all(r["driver"] is None for r in orders)  # no driver names for partners
    assert (options["sources"], options["drivers"], options["partner_source"]) == (["erp"], [], "erp")


@pytest.mark.parametrize("params", [{"source": "shop"}, {"driver": "dan"}, {"by": "driver"}])
def test_a_partner_key_cannot_widen_its_view(acme, history, params):
    erp = key_client(acme, source="erp")
    if params.get("driver"):
        params = {"driver": history["dan"].pk}
    path = "/api/v1/reports/breakdown/" if "by" in params else "/api/v1/reports/kpis/"

    response = erp.get(path, {**RANGE, **params})

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_reports_need_the_reports_scope(acme, history, as_bob):
    orders_only = key_client(acme, scopes=("orders:read",))

    assert orders_only.get("/api/v1/reports/kpis/").status_code == 403
    assert as_bob.get("/api/v1/reports/kpis/").status_code == 403
    assert APIClient().get("/api/v1/reports/kpis/").status_code == 401


def test_a_partner_can_be_given_a_source_when_its_key_is_made(as_alice):
    response = as_alice.post("/api/v1/api-clients/", {"name": "ERP", "scopes": ["reports:read"], "order_source": "erp"},
                             format="json")

    assert response.status_code == 201
    assert response.json()["order_source"] == "erp"


def test_figures_follow_the_summary_after_a_rebuild(as_dave, acme, history):
    Order.objects.filter(reference="o3").update(window_end=None, window_start=None)
    before = as_dave.get("/api/v1/reports/kpis/", RANGE).json()["kpis"]["windowed"]
    summary_rebuild_day(org=acme, day=D1)

    assert (before, as_dave.get("/api/v1/reports/kpis/", RANGE).json()["kpis"]["windowed"]) == (4, 3)


def test_a_partners_csv_holds_only_its_own_orders(acme, history):
    erp = key_client(acme, source="erp")

    rows = csv_rows(erp.get("/api/v1/reports/export/", {**RANGE, "table": "orders"}))
    by_driver = erp.get("/api/v1/reports/export/", {**RANGE, "table": "drivers"})

    header = rows[0]
    assert sorted(r[header.index("reference")] for r in rows[1:]) == ["o3", "o6"]
    assert {r[header.index("source")] for r in rows[1:]} == {"erp"}
    assert by_driver.status_code == 403
    assert by_driver.json()["code"] == "permission_denied"
