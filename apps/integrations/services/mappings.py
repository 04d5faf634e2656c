"""Mappings: versioned partner shapes, and trying one on a sample without saving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.accounts.models import Organization
from apps.common.exceptions import Conflict, ValidationFailed

from ..adapters import load_json
from ..drafts import Action, Draft, finish
from ..generic import mapping as engine
from ..models import Connection, Mapping, MappingVersion


def _checked(spec: Any) -> dict[str, Any]:
    problems = engine.spec_problems(spec)
    if problems:
        raise ValidationFailed({"spec": problems}, message="The mapping has problems.")
    return spec


def mapping_create(*, org: Organization, name: str, spec: dict[str, Any], actor_label: str) -> Mapping:
    _checked(spec)
    try:
        with transaction.atomic():
            mapping = Mapping.objects.create(org=org, name=name.strip())
            MappingVersion.objects.create(mapping=mapping, version=1, spec=spec, created_by=actor_label)
    except IntegrityError:
        raise Conflict(f"A mapping named {name!r} already exists.", code="duplicate_name") from None
    return mapping


def mapping_revise(*, mapping: Mapping, spec: dict[str, Any], actor_label: str) -> MappingVersion:
    """A new version; earlier ones stay, and messages keep naming the one they used."""
    _checked(spec)
    with transaction.atomic():
        Mapping.objects.select_for_update().get(pk=mapping.pk)
        last = mapping.versions.aggregate(last=Max("version"))["last"] or 0
        return MappingVersion.objects.create(mapping=mapping, version=last + 1, spec=spec, created_by=actor_label)


@dataclass(frozen=True)
class Tried:
    draft: Draft

    @property
    def ok(self) -> bool:
        return not self.draft.problems and (self.draft.action != Action.UPSERT or self.draft.order is not None)

    def as_json(self) -> dict[str, Any]:
        order = self.draft.order.model_dump(mode="json", exclude={"hub"}) if self.draft.order is not None else None
        return {"ok": self.ok, "action": self.draft.action, "external_id": self.draft.external_id,
                "order": order, "problems": [p.as_json() for p in self.draft.problems]}


def mapping_try(*, spec: dict[str, Any], payload: Any, topic: str = "", source: str = "try",
                options: dict[str, Any] | None = None) -> Tried:
    """The normalized order and every problem a sample payload would give; nothing is saved
    and no geocoder is called twice for the same answer (it is the process's geocoder)."""
    _checked(spec)
    if isinstance(payload, (bytes, str)):
        try:
            payload = load_json(payload)
        except ValueError as exc:
            raise ValidationFailed({"payload": [f"is not valid JSON ({exc})"]}) from None
    draft = engine.parse(spec=spec, topic=topic, payload=payload, options=options or {})
    return Tried(finish(draft, source=source))


def connection_try(*, connection: Connection, payload: Any, topic: str = "") -> Tried:
    """Try a sample through any connection's own adapter (Shopify, WooCommerce or mapping)."""
    from ..adapters import adapter_for

    draft = adapter_for(connection).parse(topic=topic, payload=payload, options=connection.options)
    return Tried(finish(draft, source=connection.source))
