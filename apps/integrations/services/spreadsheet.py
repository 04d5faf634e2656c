"""CSV import: every row checked, then all orders created in one transaction, or none."""

from __future__ import annotations

from dataclasses import dataclass

from apps.accounts.actor import Actor
from apps.common.exceptions import DomainError
from apps.dispatch.services.orders import IngestResult, order_bulk_create

from ..spreadsheet.parse import Parsed, parse


class CsvRejected(DomainError):
    """At least one row is wrong: nothing was imported; ``errors`` says where and why."""

    status_code = 400
    code = "csv_invalid"


@dataclass(frozen=True)
class Imported:
    parsed: Parsed
    results: list[IngestResult]


def csv_import(*, actor: Actor, content: bytes, source: str, default_country: str = "",
               dry_run: bool = False) -> Imported:
    """Naive times in the file are read in the organization's time zone."""
    parsed = parse(content, source=source, default_country=default_country, timezone=actor.org.timezone)
    if parsed.errors:
        raise CsvRejected(
            f"{len(parsed.errors)} problem(s) in the file; nothing was imported.",
            errors=[e.as_json() for e in parsed.errors], warnings=[w.as_json() for w in parsed.warnings],
            rows=parsed.rows,
        )
    if dry_run or not parsed.orders:
        return Imported(parsed, [])
    # order_bulk_create is all or nothing, and recognizes orders already imported
    # (same source and external id, same content) so a re-upload is harmless.
    return Imported(parsed, order_bulk_create(actor=actor, orders=parsed.orders, field_prefix="orders"))
