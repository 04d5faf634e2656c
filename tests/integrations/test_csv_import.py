"""CSV upload: per-row error report, nothing half-imported, re-uploads harmless."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.dispatch.models import Order, OrderItem

pytestmark = pytest.mark.django_db

URL = "/api/v1/integrations/csv/"
HEADER = "order_id,name,phone,street,zip,city,country,window_start,window_end,sku,qty,weight\n"
GOOD = (
    HEADER
    + "A-1,Erika Mustermann,030 1234567,Torstraße 1,10119,Berlin,DE,2026-11-23 09:00,2026-11-23 12:00,MUG,2,0.4\n"
    + "A-1,,,,,,,,,PLATE,1,1.5\n"
    + "A-2,Max Muster,+49 151 12345678,Invalidenstraße 50,10557,Berlin,Germany,,,BOX,1,3\n"
)


def _upload(client, text: str, **params):
    file = SimpleUploadedFile("orders.csv", text.encode(), content_type="text/csv")
    query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
    return client.post(URL + query, {"file": file}, format="multipart")


def test_a_good_sheet_imports_every_order_with_its_items(as_dave):
    response = _upload(as_dave, GOOD)

    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["rows"]) == (2, 3)
    erika = Order.objects.get(external_id="A-1")
    assert erika.source == "csv"
    assert erika.customer_phone == "+49301234567"
    assert erika.window_start.isoformat() == "2026-11-23T08:00:00+00:00"  # read in Acme's Berlin time
    assert list(erika.items.values_list("sku", "quantity")) == [("MUG", 2), ("PLATE", 1)]
    assert Order.objects.get(external_id="A-2").country == "DE"
    assert {w["field"] for w in body["warnings"]} == {"lat"}  # no coordinates: created unplaced


def test_one_bad_row_rejects_the_file_and_names_row_field_and_reason(as_dave):
    text = GOOD.replace("10557", "1055").replace("BOX,1,3", "BOX,many,3")

    response = _upload(as_dave, text)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "csv_invalid"
    errors = {(e["row"], e["field"]) for e in body["errors"]}
    assert errors == {(4, "postal_code"), (4, "quantity")}
    assert "1055" in next(e["message"] for e in body["errors"] if e["field"] == "postal_code")
    assert Order.objects.count() == 0 and OrderItem.objects.count() == 0


def test_rows_of_one_order_that_disagree_are_reported(as_dave):
    text = GOOD.replace("A-1,,,,,,,,,PLATE", "A-1,,,,,Hamburg,,,,PLATE")

    errors = _upload(as_dave, text).json()["errors"]

    assert errors == [{"row": 3, "field": "city", "message": "differs from row 2 of order A-1; an order's rows must agree"}]


def test_unknown_and_missing_columns_are_named(as_dave):
    body = _upload(as_dave, "order_id,colour\nA-1,red\n").json()

    fields = {e["field"] for e in body["errors"]}
    assert {"colour", "customer_name", "address_line1", "city"} <= fields
    assert all(e["row"] == 1 for e in body["errors"])


def test_a_dry_run_checks_without_importing(as_dave):
    body = _upload(as_dave, GOOD, dry_run="true").json()

    assert (body["dry_run"], body["orders"], body["created"]) == (True, 2, 0)
    assert Order.objects.count() == 0


def test_uploading_the_same_sheet_twice_creates_nothing_new(as_dave):
    _upload(as_dave, GOOD)
    again = _upload(as_dave, GOOD)

    assert again.status_code == 200
    assert again.json()["existing"] == 2
    assert Order.objects.count() == 2


def test_a_semicolon_sheet_with_a_bom_from_excel_is_read(as_dave):
    text = "\ufeff" + GOOD.replace(",", ";")

    assert _upload(as_dave, text).json()["created"] == 2


def test_a_raw_text_csv_body_works_too(as_dave):
    response = as_dave.post(f"{URL}?source=shop-sheet", data=GOOD.encode(), content_type="text/csv")

    assert response.status_code == 201
    assert Order.objects.filter(source="shop-sheet").count() == 2


def test_a_file_that_is_not_utf8_is_refused_clearly(as_dave):
    file = SimpleUploadedFile("orders.csv", GOOD.encode("utf-16"), content_type="text/csv")

    body = as_dave.post(URL, {"file": file}, format="multipart").json()

    assert body["errors"][0]["field"] == "file" and "UTF-8" in body["errors"][0]["message"]


def test_a_driver_cannot_import(as_bob):
    assert _upload(as_bob, GOOD).status_code == 403


def test_a_broken_csv_is_a_400_not_a_500(as_dave):
    response = as_dave.post(URL, data=b'order_id,name\r"A-1,\rErika\x00\n', content_type="text/csv")

    assert response.status_code == 400
    assert response.json()["code"] in ("csv_invalid", "validation_error")
