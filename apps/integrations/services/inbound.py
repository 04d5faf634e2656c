"""Inbound messages: store a verified request, process it once, park what cannot be applied.

The request thread only stores and enqueues (``inbound_receive``); everything slow or
fallible (parsing, geocoding, the order services) runs in ``inbound_process`` on a
worker, so a partner gets its 2xx in milliseconds and a bug never costs a delivery.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connections, transaction
from django.db.models import F
from django.tasks import TaskResultStatus
from django.utils import timezone
from pydantic import ValidationError

from apps.accounts.actor import Actor
from apps.accounts.roles import ALL_SCOPES
from apps.common.exceptions import Conflict, DomainError, ValidationFailed
from apps.dispatch.inputs import OrderPatch
from apps.dispatch.models import OrderState
from apps.dispatch.services.orders import order_cancel, order_create, order_update

from ..adapters import Adapter, adapter_for, load_json
from ..drafts import Action, Draft, finish
from ..models import Connection, ExternalOrder, InboundMessage, InboundStatus

if TYPE_CHECKING:
    from .reconcile import ApiTransport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionActor(Actor):
    """The integration acting on the organization's behalf; events name the connection."""

    connection_id: int = 0

    @property
    def label(self) -> str:
        return f"integration:{self.connection_id}"


def _actor(connection: Connection) -> Actor:
    return ConnectionActor(org=connection.org, scopes=ALL_SCOPES, connection_id=connection.pk)


_NOT_KEPT = frozenset({"cookie", "authorization", "proxy-authorization", "x-api-key"})


@dataclass(frozen=True)
class NewInbound:
    """A verified request, ready to store: what ``inbound_store`` writes for it."""

    org_id: int
    connection_id: int
    topic: str
    headers: dict[str, str]
    body: bytes
    dedupe_key: str | None
    body_sha256: str


@dataclass(frozen=True)
class Stored:
    id: int
    duplicate: bool


@dataclass(frozen=True)
class Received:
    message: InboundMessage
    duplicate: bool


def inbound_prepare(*, connection: Connection, headers: Mapping[str, str], body: bytes,
                    adapter: Adapter | None = None) -> NewInbound:
    """The row for a request whose signature the caller has verified (pure, no I/O)."""
    adapter = adapter or adapter_for(connection)
    return NewInbound(
        org_id=connection.org_id, connection_id=connection.pk, topic=adapter.topic(headers)[:100],
        # Every header as received, except credentials a proxy or client might add.
        headers={name: value for name, value in headers.items() if name.lower() not in _NOT_KEPT},
        body=body, dedupe_key=(adapter.dedupe_key(headers, body) or None), body_sha256=hashlib.sha256(body).hexdigest(),
    )


def inbound_store(*, items: Sequence[NewInbound]) -> list[Stored]:
    """Store verified requests and queue the processing of each new one, atomically;
    return, in order, each one's message id and whether it was a
    redelivery (same connection and idempotency key as a stored message: counted on
    that message, not stored again).

    When this returns the rows are committed (or the caller's transaction holds them):
    the partner may have its 2xx. On PostgreSQL the messages and their task rows are
    written by one statement, whatever the number of requests (apps/integrations/writer.py
    gathers concurrent requests into one call).
    """
    if not items:
        return []
    # One insert per idempotency key; later copies in the same batch are redeliveries.
    first: dict[tuple[int, str], int] = {}
    fresh: list[int] = []
    for index, item in enumerate(items):
        if item.dedupe_key is None:
            fresh.append(index)
        elif (item.connection_id, item.dedupe_key) not in first:
            first[(item.connection_id, item.dedupe_key)] = index
            fresh.append(index)
    if connections["default"].vendor == "postgresql":
        # A single statement is its own transaction: one round trip stores the batch
        # (no BEGIN and COMMIT around it), or joins the caller's transaction.
        inserted = _insert_pg([items[i] for i in fresh])
    else:
        with transaction.atomic():
            inserted = _insert_orm([items[i] for i in fresh])
    ids: dict[int, int] = {}  # item index -> message id
    unkeyed = iter(i for i in fresh if items[i].dedupe_key is None)
    for pk, connection_id, key in inserted:
        index = next(unkeyed) if key is None else first[(connection_id, key)]
        ids[index] = pk
    repeats: dict[tuple[int, str], int] = {}
    for index, item in enumerate(items):
        if index not in ids:
            key = (item.connection_id, item.dedupe_key or "")
            repeats[key] = repeats.get(key, 0) + 1
    # Counting redeliveries is bookkeeping on rows already committed: a statement of its own.
    known = _count_duplicates(repeats) if repeats else {}
    return [Stored(ids[i], False) if i in ids else Stored(known[(item.connection_id, item.dedupe_key or "")], True)
            for i, item in enumerate(items)]


_MESSAGE_COLUMNS = ("org_id, connection_id, received_at, topic, headers, body, dedupe_key, body_sha256, duplicates, "
                    "status, attention, reason, problems, overrides, external_id, attempts")
_MESSAGE_ROW = "(%s, %s, %s, %s, %s::jsonb, %s, %s, %s, 0, 'received', false, '', '[]'::jsonb, '{}'::jsonb, '', 0)"


def _insert_pg(items: list[NewInbound]) -> list[tuple[int, int, str | None]]:
    """One statement: the messages (a redelivery racing in from another process loses on
    the unique constraint and is skipped) and, for each one inserted, its task row,
    exactly what ``process_inbound.enqueue`` writes (django-tasks-db's table; the
    worker's own claim-and-run code runs these in the tests)."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    from ..tasks import process_inbound

    now = timezone.now()
    params: list[Any] = []
    for item in items:
        params += [item.org_id, item.connection_id, now, item.topic, json.dumps(item.headers), item.body,
                   item.dedupe_key, item.body_sha256]
    tasks = DBTaskResult._meta.db_table
    sql = (
        # Table names come from the models; every value is a parameter.
        f"WITH new AS (INSERT INTO {InboundMessage._meta.db_table} ({_MESSAGE_COLUMNS}) "  # noqa: S608
        f"VALUES {', '.join([_MESSAGE_ROW] * len(items))} "
        "ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING id, connection_id, dedupe_key), "
        f"queued AS (INSERT INTO {tasks} (id, status, enqueued_at, args_kwargs, priority, task_path, worker_ids, "
        "queue_name, backend_name, run_after, exception_class_path, traceback) "
        "SELECT gen_random_uuid(), %s, %s, jsonb_build_object('args', jsonb_build_array(id), 'kwargs', '{}'::jsonb), "
        "%s, %s, '[]'::jsonb, %s, %s, %s, '', '' FROM new) "
        "SELECT id, connection_id, dedupe_key FROM new"
    )
    params += [TaskResultStatus.READY.value, now, process_inbound.priority, process_inbound.module_path,
               process_inbound.queue_name, process_inbound.backend, process_inbound.run_after or get_date_max()]
    import psycopg

    database = connections["default"]
    database.ensure_connection()
    # Server-side binding: bodies travel as binary parameters. Django's default cursor
    # binds on the client, escaping each 10 KB body into the SQL text, which cost more
    # CPU than the rest of the request (docs/performance.md, "Inbound webhooks").
    try:
        with psycopg.Cursor(database.connection) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    except psycopg.Error as exc:
        # As Django's cursor would: the error as django.db's type, and the connection marked.
        database.errors_occurred = True
        with database.wrap_database_errors:
            raise exc from None


def _insert_orm(items: list[NewInbound]) -> list[tuple[int, int, str | None]]:
    """Any other database (SQLite in development): the same rows through the ORM."""
    from ..tasks import process_inbound

    inserted = []
    for item in items:
        try:
            with transaction.atomic():
                message = InboundMessage.objects.create(
                    org_id=item.org_id, connection_id=item.connection_id, topic=item.topic, headers=item.headers,
                    body=item.body, dedupe_key=item.dedupe_key, body_sha256=item.body_sha256)
        except IntegrityError:
            if item.dedupe_key is None:
                raise
            continue
        process_inbound.enqueue(message.pk)
        inserted.append((message.pk, item.connection_id, item.dedupe_key))
    return inserted


def _count_duplicates(repeats: dict[tuple[int, str], int]) -> dict[tuple[int, str], int]:
    """Add redeliveries to their stored messages' counters; return the messages' ids.
    A separate statement from the insert: it must see a row another transaction
    committed while the insert waited on it."""
    found: dict[tuple[int, str], int] = {}
    for (connection_id, key), count in repeats.items():
        InboundMessage.objects.filter(connection_id=connection_id, dedupe_key=key).update(
            duplicates=F("duplicates") + count)
        found[(connection_id, key)] = InboundMessage.objects.values_list("pk", flat=True).get(
            connection_id=connection_id, dedupe_key=key)
    return found


def inbound_receive(*, connection: Connection, headers: Mapping[str, str], body: bytes,
                    adapter: Adapter | None = None) -> Received:
    """Store one request whose signature the caller has verified, and queue its processing.

    The message row and its task row commit together: once the partner has its 2xx,
    the work is durable. A second delivery with the same idempotency key is counted,
    not stored.
    """
    stored = inbound_store(items=[inbound_prepare(connection=connection, headers=headers, body=body, adapter=adapter)])[0]
    return Received(InboundMessage.objects.get(pk=stored.id), duplicate=stored.duplicate)


def _parse(message: InboundMessage) -> Draft:
    connection = message.connection
    adapter = adapter_for(connection)
    try:
        payload = load_json(bytes(message.body))
    except ValueError as exc:
        draft = Draft()
        draft.problem("body", f"is not valid JSON ({exc})")
        return draft
    draft = adapter.parse(topic=message.topic, payload=payload, options=connection.options)
    if connection.mapping_id and hasattr(draft, "mapping_version"):
        message.mapping_version = draft.mapping_version  # type: ignore[attr-defined]
    return finish(draft, source=connection.source, overrides=message.overrides)


def _park(message: InboundMessage, reason: str, problems: list[dict[str, Any]] | None = None) -> None:
    message.status = InboundStatus.NEEDS_ATTENTION
    message.attention = True
    message.reason = reason[:2000]
    message.problems = problems if problems is not None else message.problems


def inbound_process(*, message_id: int, transport: ApiTransport | None = None) -> InboundMessage:
    """Apply a stored message once. Safe to run again: a message already processed is left alone.
    ``transport`` is for the partner API calls some messages need first (tests pass a fake)."""
    from .fulfillment import fulfillment_order_lookup

    fulfillment_order_lookup(message_id=message_id, transport=transport)  # network: before the lock
    with transaction.atomic():
        message = (InboundMessage.objects.select_for_update(of=("self",))
                   .select_related("connection", "connection__org").get(pk=message_id))
        if message.status != InboundStatus.RECEIVED:
            return message
        message.attempts += 1
        try:
            with transaction.atomic():
                _apply(message)
        except DomainError as exc:
            _park(message, exc.message)
        except Exception as exc:  # a bug must park the message, not retry it for ever
            logger.exception("inbound message %s failed", message.pk)
            _park(message, f"processing failed unexpectedly ({type(exc).__name__}); it has been logged")
        message.processed_at = timezone.now()
        message.save()
    return message


def _apply(message: InboundMessage) -> None:
    connection = message.connection
    draft = _parse(message)
    message.external_id = draft.external_id[:128]
    message.source_updated_at = draft.source_updated_at
    message.problems = [p.as_json() for p in draft.problems]
    if draft.action == Action.IGNORE:
        message.status, message.reason, message.attention = InboundStatus.IGNORED, draft.note, False
        return
    if draft.blocking or (draft.action == Action.UPSERT and draft.order is None):
        _park(message, draft.reason or "the order could not be read")
        return
    if draft.fulfillment_order_id:
        from .fulfillment import fulfillment_apply

        fulfillment_apply(message=message, draft=draft, actor=_actor(connection))
        return
    link = (ExternalOrder.objects.select_for_update().select_related("order")
            .filter(connection=connection, external_id=draft.external_id).first())
    held = link.source_updated_at if link else None
    if held and draft.source_updated_at and draft.source_updated_at < held:
        # A retry of an older version (Shopify retries for hours with the original body).
        message.status, message.attention = InboundStatus.STALE, False
        message.reason = f"older than the version applied ({held.isoformat()}); recorded, not applied"
        message.order = link.order
        return
    actor = _actor(connection)
    if draft.action == Action.CANCEL:
        _cancel(message, link, draft, actor)
    elif link is None:
        _create(message, draft, actor, connection)
    elif held and draft.source_updated_at == held:
        message.status, message.order = InboundStatus.PROCESSED, link.order
        message.reason = "this version was already applied"
    else:
        _update(message, link, draft, actor)
    if message.status == InboundStatus.PROCESSED:
        warnings = [p for p in draft.problems if not p.blocking]
        message.attention = bool(warnings)
        message.reason = "; ".join(f"{p.field}: {p.message}" for p in warnings) or message.reason


def _create(message: InboundMessage, draft: Draft, actor: Actor, connection: Connection) -> None:
    assert draft.order is not None
    try:
        result = order_create(actor=actor, data=draft.order)
    except Conflict as exc:
        _park(message, f"an order {connection.source}/{draft.external_id} already exists and was not created "
                       f"by this connection: {exc.message}")
        return
    ExternalOrder.objects.create(connection=connection, order=result.order, external_id=draft.external_id,
                                 source_updated_at=draft.source_updated_at)
    message.status, message.order = InboundStatus.PROCESSED, result.order


_PARTNER_FIELDS = frozenset(OrderPatch.model_fields) - {"hub"}
_ADDRESS_FIELDS = frozenset({"address_line1", "address_line2", "city", "postal_code", "region", "country", "lat", "lng"})
_WITH_DRIVER = frozenset({OrderState.DISPATCHED, OrderState.OUT_FOR_DELIVERY})


def _update(message: InboundMessage, link: ExternalOrder, draft: Draft, actor: Actor) -> None:
    assert draft.order is not None
    # Only what the partner sends changes: a hub or priority set by a dispatcher stays.
    sent = set(draft.fields) & _PARTNER_FIELDS
    if "lat" in sent:
        sent.add("geocode_confidence")  # only new coordinates say how good they are
    order = link.order
    if order.state in _WITH_DRIVER:
        moved = sorted(f for f in _ADDRESS_FIELDS & sent if getattr(draft.order, f) != getattr(order, f))
        if moved:
            # The driver already has this stop; a new address must be a dispatcher's call.
            _park(message, f"the order is {order.state} and the partner changed {', '.join(moved)}; "
                           "apply it by hand (or reprocess after re-planning)")
            message.order = order
            return
    try:
        patch = OrderPatch.model_validate(draft.order.model_dump(include=sent))
        order_update(actor=actor, order=link.order, patch=patch)
    except ValidationError as exc:
        raise ValidationFailed({"order": [str(exc)]}) from None
    except Conflict as exc:
        _park(message, f"the change was not applied: {exc.message}")
        message.order = link.order
        return
    link.source_updated_at = draft.source_updated_at or link.source_updated_at
    link.save(update_fields=["source_updated_at"])
    message.status, message.order = InboundStatus.PROCESSED, link.order


def _cancel(message: InboundMessage, link: ExternalOrder | None, draft: Draft, actor: Actor) -> None:
    if link is None:
        message.status, message.attention = InboundStatus.IGNORED, False
        message.reason = "cancelled before we received the order; nothing to cancel"
        return
    message.order = link.order
    if link.order.state == OrderState.CANCELLED:
        message.status, message.reason = InboundStatus.PROCESSED, "already cancelled"
        return
    try:
        order_cancel(actor=actor, order=link.order, reason=draft.note[:500])
    except Conflict as exc:
        _park(message, f"the cancellation was not applied: {exc.message}")
        return
    link.source_updated_at = draft.source_updated_at or link.source_updated_at
    link.save(update_fields=["source_updated_at"])
    message.status = InboundStatus.PROCESSED


# --- the attention queue --------------------------------------------------------------


def inbound_fix(*, message: InboundMessage, overrides: dict[str, Any]) -> InboundMessage:
    """Record a person's corrections (order fields) and process the message again with them."""
    with transaction.atomic():
        locked = InboundMessage.objects.select_for_update().get(pk=message.pk)
        locked.overrides = {**locked.overrides, **overrides}
        locked.save(update_fields=["overrides"])
    return inbound_reprocess(message=locked)


def inbound_reprocess(*, message: InboundMessage) -> InboundMessage:
    """Run a message that needs attention again (after a fix to it, its mapping or the order)."""
    with transaction.atomic():
        updated = InboundMessage.objects.filter(
            pk=message.pk, status__in=[InboundStatus.NEEDS_ATTENTION, InboundStatus.RECEIVED]
        ).update(status=InboundStatus.RECEIVED)
        if not updated:
            current = InboundMessage.objects.get(pk=message.pk)
            raise Conflict(f"A {current.status.replace('_', ' ')} message cannot be reprocessed.",
                           code="not_reprocessable", current_status=current.status)
    return inbound_process(message_id=message.pk)


def inbound_dismiss(*, message: InboundMessage) -> InboundMessage:
    """Take a message out of the queue without applying anything more."""
    InboundMessage.objects.filter(pk=message.pk).update(attention=False)
    message.refresh_from_db()
    return message


def inbound_requeue_stuck(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Queue again messages still unprocessed long after arrival: their task's worker
    died mid-run (django-tasks-db leaves such a task RUNNING for ever). Processing is
    idempotent, so a message that was in fact done meanwhile is left alone."""
    from ..tasks import process_inbound

    stuck = list(InboundMessage.objects.filter(status=InboundStatus.RECEIVED,
                                               received_at__lt=timezone.now() - older_than).values_list("pk", flat=True))
    for pk in stuck:
        process_inbound.enqueue(pk)
    return len(stuck)

