"""CSV export: streamed, quoted by the csv module, and safe to open in a spreadsheet.

A cell a spreadsheet would read as a formula (starting with = + - @, or a tab or
carriage return that some programs strip first) is prefixed with a single quote, as
OWASP recommends: customer names and notes come from outside and end up in Excel.
Numbers are written as numbers (a negative number is not text and is left alone).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([cell(h) for h in header])  # BOM: Excel reads UTF-8
    for row in rows:
        yield writer.writerow([cell(v) for v in row])
