"""Orders from a CSV file, for shippers without an API. One row per item; rows sharing an
``external_id`` are one order (its first row carries the address). Row numbers are the
spreadsheet's: the header is row 1.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from apps.dispatch.inputs import OrderIn

from .. import normalize as n
from ..drafts import Draft, finish

MAX_ROWS = 5000
ORDER_COLUMNS = ("external_id", "reference", "customer_name", "customer_phone", "customer_email", "address_line1",
                 "address_line2", "city", "postal_code", "region", "country", "lat", "lng", "window_start", "window_end",
                 "service_time_s", "instructions", "priority")
ITEM_COLUMNS = ("sku", "description", "quantity", "weight_kg", "volume_l")
ALIASES = {"order_id": "external_id", "order": "external_id", "name": "customer_name", "recipient": "customer_name",
           "phone": "customer_phone", "email": "customer_email", "address": "address_line1", "street": "address_line1",
           "zip": "postal_code", "postcode": "postal_code", "state": "region", "notes": "instructions",
           "qty": "quantity", "weight": "weight_kg"}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class Parsed:
    orders: list[OrderIn] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    rows: int = 0


def _column(name: str) -> str:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, key)


def parse(content: bytes, *, source: str, default_country: str = "", timezone: str = "UTC") -> Parsed:
    result = Parsed()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.errors.append(RowError(0, "file", f"is not UTF-8 text (byte {exc.start}); export the sheet as CSV UTF-8"))
        return result
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    text = text.replace("\x00", "")  # PostgreSQL cannot store NUL; a spreadsheet never means one
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        return _rows(result, reader, source=source, default_country=default_country, timezone=timezone)
    except csv.Error as exc:
        result.errors.append(RowError(reader.line_num, "file", f"is not valid CSV ({exc})"))
        return result


def _rows(result: Parsed, reader: Any, *, source: str, default_country: str, timezone: str) -> Parsed:
    header = next(reader, None)
    if not header:
        result.errors.append(RowError(1, "file", "is empty; the first row must name the columns"))
        return result
    columns = [_column(h) for h in header]
    unknown = sorted({c for c in columns if c and c not in ORDER_COLUMNS + ITEM_COLUMNS})
    for name in unknown:
        result.errors.append(RowError(1, name, f"is not a column we know (use {', '.join(ORDER_COLUMNS + ITEM_COLUMNS)})"))
    for needed in ("external_id", "customer_name", "address_line1", "city"):
        if needed not in columns:
            result.errors.append(RowError(1, needed, "column is missing"))
    if result.errors:
        return result
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        result.rows += 1
        if result.rows > MAX_ROWS:
            result.errors.append(RowError(number, "file", f"has more than {MAX_ROWS} rows; split it"))
            return result
        if len(values) > len(columns):
            result.errors.append(RowError(number, "row", f"has {len(values)} cells for {len(columns)} columns"))
            continue
        row = {c: v for c, v in zip(columns, values, strict=False) if c}
        key = row.get("external_id", "").strip()
        if not key:
            result.errors.append(RowError(number, "external_id", "is empty"))
            continue
        groups.setdefault(key, []).append((number, row))
    for key, rows in groups.items():
        _order(result, key, rows, source=source, default_country=default_country, timezone=timezone)
    return result


def _order(result: Parsed, key: str, rows: list[tuple[int, dict[str, str]]], *, source: str, default_country: str,
           timezone: str) -> None:
    first_number, first = rows[0]
    draft = Draft(external_id=key)
    for name in ("reference", "customer_name", "customer_email", "address_line1", "address_line2", "city", "region",
                 "instructions"):
        if first.get(name, "").strip():
            draft.put(name, n.text, first[name])
    country = draft.put("country", n.country_code, first.get("country") or default_country)
    if country and first.get("postal_code", "").strip():
        draft.put("postal_code", n.postal_code, first["postal_code"], country)
    if first.get("customer_phone", "").strip():
        draft.put("customer_phone", n.phone_e164, first["customer_phone"], region=country or "US")
    for name in ("window_start", "window_end"):
        if first.get(name, "").strip():
            draft.put(name, n.utc, first[name], tz=timezone)
    for name in ("lat", "lng"):
        if first.get(name, "").strip():
            try:
                draft.fields[name] = float(first[name].replace(",", "."))
            except ValueError:
                draft.problem(name, f"{first[name]!r} is not a number")
    for name in ("service_time_s", "priority"):
        if first.get(name, "").strip():
            raw = first[name].strip()
            if raw.isdigit():
                draft.fields[name] = int(raw)
            else:
                draft.problem(name, f"{raw!r} is not a whole number")
    items = []
    for number, row in rows:
        for name in ORDER_COLUMNS[2:]:
            if number != first_number and row.get(name, "").strip() and row[name].strip() != first.get(name, "").strip():
                result.errors.append(RowError(number, name, f"differs from row {first_number} of order {key}; "
                                                            "an order's rows must agree"))
        if not row.get("sku", "").strip():
            continue
        try:
            quantity = int(row.get("quantity", "").strip() or 1)
            if quantity < 1:
                raise ValueError
        except ValueError:
            result.errors.append(RowError(number, "quantity", f"{row.get('quantity')!r} is not a positive whole number"))
            continue
        try:
            weight = n.weight_kg(row.get("weight_kg", "").replace(",", "."), "kg")
            volume = n.decimal(row.get("volume_l", "").replace(",", ".")).quantize(n._GRAM)
        except n.Unusable as exc:
            result.errors.append(RowError(number, "weight_kg", str(exc)))
            continue
        items.append({"sku": n.text(row["sku"])[:64], "description": n.text(row.get("description"))[:200],
                      "quantity": quantity, "weight_kg": weight, "volume_l": volume})
    draft.fields["items"] = items
    finish(draft, source=source)
    for problem in draft.problems:
        target = result.errors if problem.blocking else result.warnings
        target.append(RowError(_row_of(problem.field, rows), problem.field, problem.message))
    if draft.order is not None and not draft.blocking:
        result.orders.append(draft.order)


def _row_of(field_path: str, rows: list[tuple[int, dict[str, str]]]) -> int:
    """Item errors point at the item's row; everything else at the order's first row."""
    parts = field_path.split(".")
    if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
        with_sku = [number for number, row in rows if row.get("sku", "").strip()]
        index = int(parts[1])
        if index < len(with_sku):
            return with_sku[index]
    return rows[0][0]

