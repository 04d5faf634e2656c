"""The generic JSON connector: a partner's payload read through a mapping stored as data.

A mapping (``spec``) says where each of our order fields lives in the partner's JSON,
how the partner's values translate (statuses, units), what to assume when a value is
missing, and how the partner signs its requests. Example (the README walks through it)::

    {
      "external_id": "entity_id",
      "updated_at": "updated_at",
      "timezone": "America/New_York",
      "action": {"path": "status", "cancel": ["canceled"], "ignore": ["pending_payment"]},
      "fields": {
        "customer_name": {"paths": ["shipping_address.firstname", "shipping_address.lastname"], "join": " "},
        "address_line1": "shipping_address.street",
        "country": "shipping_address.country_id",
        "priority": {"path": "shipping_method", "map": {"express_express": 2}, "default": 1}
      },
      "items": {"path": "line_items", "sku": ["sku", "name"], "description": "name", "quantity": "qty",
                "weight": "weight", "weight_unit": "lb"},
      "defaults": {"country": "US"},
      "signature": {"header": "X-Signature", "algorithm": "sha256", "encoding": "base64"},
      "dedupe": {"header": "X-Event-Id"}
    }

A partner that signs with Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) uses ``"signature": {"scheme": "standard-webhooks"}`` and
``"dedupe": {"header": "webhook-id"}``.

Paths are dot-separated keys; a number indexes a list (``addresses.0.city``). A list of
paths takes the first that has a value.
"""

from __future__ import annotations

from typing import Any

from .. import normalize as n
from ..drafts import Action, Draft
from ..normalize import Unusable

TOP_KEYS = frozenset({"format", "external_id", "updated_at", "timezone", "action", "fields", "items", "defaults",
                      "signature", "dedupe", "topic", "description"})
TARGETS = frozenset({
    "reference", "customer_name", "customer_phone", "customer_email", "address_line1", "address_line2", "city",
    "postal_code", "region", "country", "lat", "lng", "window_start", "window_end", "service_time_s",
    "instructions", "priority", "pod_requirements", "required_skills", "custom_fields",
})
FIELD_KEYS = frozenset({"path", "paths", "join", "map", "default", "value", "strict_map"})
ITEM_KEYS = frozenset({"path", "sku", "description", "quantity", "weight", "weight_unit", "length", "width",
                       "height", "dimension_unit"})
ALGORITHMS = {"sha256", "sha512"}
ENCODINGS = {"base64", "hex"}
_MISSING = object()


def resolve(payload: Any, path: str) -> Any:
    node = payload
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is _MISSING:
            return None
    return node


def _first(payload: Any, paths: str | list[str]) -> Any:
    for path in [paths] if isinstance(paths, str) else paths:
        value = resolve(payload, path)
        if value not in (None, ""):
            return value
    return None


def _paths_ok(value: Any) -> bool:
    return (isinstance(value, str) and bool(value)) or (
        isinstance(value, list) and bool(value) and all(isinstance(p, str) and p for p in value))


def spec_problems(spec: Any) -> list[str]:
    """Everything wrong with a mapping itself, in words a partner engineer can act on."""
    if not isinstance(spec, dict):
        return ["The mapping must be a JSON object."]
    errors = [f"Unknown key {k!r}." for k in sorted(set(spec) - TOP_KEYS)]
    if not _paths_ok(spec.get("external_id")):
        errors.append("external_id: give the path of the partner's order id, e.g. \"id\".")
    if "updated_at" in spec and not _paths_ok(spec["updated_at"]):
        errors.append("updated_at: must be a path.")
    fields = spec.get("fields", {})
    if not isinstance(fields, dict):
        errors.append("fields: must map our field names to paths.")
        fields = {}
    for target, rule in fields.items():
        if target not in TARGETS:
            errors.append(f"fields.{target}: not an order field (one of {', '.join(sorted(TARGETS))}).")
        elif isinstance(rule, dict):
            errors += [f"fields.{target}: unknown key {k!r}." for k in sorted(set(rule) - FIELD_KEYS)]
            if not any(k in rule for k in ("path", "paths", "value", "default")):
                errors.append(f"fields.{target}: needs path, paths, value or default.")
            if "map" in rule and not isinstance(rule["map"], dict):
                errors.append(f"fields.{target}.map: must be an object of partner value → our value.")
        elif not _paths_ok(rule):
            errors.append(f"fields.{target}: must be a path, a list of paths or a rule object.")
    defaults = spec.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - TARGETS:
        errors.append("defaults: must map order field names to values.")
    items = spec.get("items")
    if items is not None:
        if not isinstance(items, dict) or not isinstance(items.get("path"), str):
            errors.append("items: needs the path of the partner's line list.")
        else:
            errors += [f"items: unknown key {k!r}." for k in sorted(set(items) - ITEM_KEYS)]
            for unit_key, table in (("weight_unit", n._TO_KG), ("dimension_unit", n._TO_CM)):
                if unit_key in items and str(items[unit_key]).lower() not in table:
                    errors.append(f"items.{unit_key}: one of {', '.join(sorted(table))}.")
    action = spec.get("action")
    if action is not None and (not isinstance(action, dict) or not _paths_ok(action.get("path"))):
        errors.append("action: needs the path of the partner's status and lists of cancel/ignore values.")
    signature = spec.get("signature")
    if isinstance(signature, dict) and signature.get("scheme") == "standard-webhooks":
        if set(signature) != {"scheme"}:
            errors.append("signature: the standard-webhooks scheme has fixed headers; give only the scheme.")
    elif isinstance(signature, dict) and "scheme" in signature:
        errors.append("signature.scheme: standard-webhooks, or leave it out for an HMAC of the body.")
    elif not isinstance(signature, dict) or not isinstance(signature.get("header"), str):
        errors.append("signature: every inbound request is verified; give the header that carries the HMAC.")
    else:
        if signature.get("algorithm", "sha256") not in ALGORITHMS:
            errors.append(f"signature.algorithm: one of {', '.join(sorted(ALGORITHMS))}.")
        if signature.get("encoding", "base64") not in ENCODINGS:
            errors.append(f"signature.encoding: one of {', '.join(sorted(ENCODINGS))}.")
    dedupe = spec.get("dedupe")
    if dedupe is not None and not (isinstance(dedupe, dict) and (
            isinstance(dedupe.get("header"), str) or _paths_ok(dedupe.get("paths")))):
        errors.append("dedupe: {\"header\": \"X-Event-Id\"} or {\"paths\": [\"id\", \"updated_at\"]}.")
    return errors


def _value(payload: Any, rule: Any, target: str, draft: Draft) -> Any:
    if not isinstance(rule, dict):
        return _first(payload, rule)
    if "value" in rule:
        return rule["value"]
    if "paths" in rule and "join" in rule:
        parts = [n.text(resolve(payload, p)) for p in rule["paths"]]
        value: Any = str(rule["join"]).join(p for p in parts if p) or None
    else:
        value = _first(payload, rule.get("path") or rule.get("paths"))
    if "map" in rule and value is not None:
        key = str(value)
        if key in rule["map"]:
            value = rule["map"][key]
        elif rule.get("strict_map"):
            draft.problem(target, f"the partner value {key!r} is not in the mapping's value map")
            return None
        elif "default" in rule:
            return rule["default"]  # a code the map does not know means "the usual"
    if value in (None, "") and "default" in rule:
        value = rule["default"]
    return value


_TEXT = {"reference": 128, "customer_name": 200, "customer_email": 254, "address_line1": 200, "address_line2": 200,
         "city": 100, "region": 100, "instructions": 2000}


def parse(*, spec: dict[str, Any], topic: str, payload: Any, options: dict[str, Any]) -> Draft:
    draft = Draft()
    if not isinstance(payload, dict):
        draft.problem("body", "is not a JSON object")
        return draft
    tz = spec.get("timezone") or options.get("timezone") or "UTC"
    try:
        draft.external_id = n.external_id(_first(payload, spec["external_id"]))
    except Unusable as exc:
        draft.problem("external_id", f"{spec['external_id']}: {exc}")
        return draft
    if "updated_at" in spec:
        draft.put("_updated", n.utc, _first(payload, spec["updated_at"]), tz=tz)
        draft.source_updated_at = draft.fields.pop("_updated", None)
    action = spec.get("action")
    if isinstance(action, dict):
        status = n.text(_first(payload, action["path"]))
        if status in [str(v) for v in action.get("cancel", [])]:
            draft.action, draft.note = Action.CANCEL, f"status {status} at the partner"
            return draft
        if status in [str(v) for v in action.get("ignore", [])]:
            draft.action, draft.note = Action.IGNORE, f"status {status} is not delivered"
            return draft
    raw: dict[str, Any] = dict(spec.get("defaults", {}))
    for target, rule in spec.get("fields", {}).items():
        value = _value(payload, rule, target, draft)
        if value not in (None, ""):
            raw[target] = value
    _fields(draft, raw, tz, options)
    if isinstance(spec.get("items"), dict):
        _items(draft, payload, spec["items"])
    return draft


def _fields(draft: Draft, raw: dict[str, Any], tz: str, options: dict[str, Any]) -> None:
    for target, limit in _TEXT.items():
        if target in raw:
            draft.put(target, n.text, raw[target], max_length=limit)
    country = draft.put("country", n.country_code, raw.get("country") or options.get("default_country"))
    if country and "postal_code" in raw:
        draft.put("postal_code", n.postal_code, raw["postal_code"], country)
    if raw.get("customer_phone") and draft.soft("customer_phone", n.phone_e164, raw["customer_phone"],
                                                region=country or "US") is None:
        draft.fields.setdefault("custom_fields", {})["phone_as_sent"] = n.text(raw["customer_phone"])[:64]
    for target in ("window_start", "window_end"):
        if target in raw:
            draft.put(target, n.utc, raw[target], tz=tz)
    for target in ("lat", "lng"):
        if target in raw:
            try:
                draft.fields[target] = float(raw[target])
            except (TypeError, ValueError):
                draft.problem(target, f"{raw[target]!r} is not a number")
    for target in ("service_time_s", "priority", "pod_requirements", "required_skills"):
        if target in raw:
            draft.fields[target] = raw[target]  # the order contract checks type and range
    if isinstance(raw.get("custom_fields"), dict):
        draft.fields["custom_fields"] = {**raw["custom_fields"], **draft.fields.get("custom_fields", {})}


def _items(draft: Draft, payload: Any, rule: dict[str, Any]) -> None:
    lines = resolve(payload, rule["path"])
    if lines is None:
        draft.fields["items"] = []
        return
    if not isinstance(lines, list):
        draft.problem("items", f"{rule['path']} is not a list")
        return
    weight_unit, dimension_unit = rule.get("weight_unit", "kg"), rule.get("dimension_unit", "cm")
    items = []
    for index, line in enumerate(lines):
        where = f"items.{index}"
        quantity = _first(line, rule.get("quantity", "quantity"))
        if isinstance(quantity, str) and quantity.strip().isdigit():
            quantity = int(quantity)
        if isinstance(quantity, float) and quantity.is_integer():
            quantity = int(quantity)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            draft.problem(f"{where}.quantity", f"{quantity!r} is not a positive whole number")
            continue
        sku = n.text(_first(line, rule.get("sku", "sku")))
        if not sku:
            draft.problem(f"{where}.sku", "is missing")
            continue
        try:
            weight = n.weight_kg(_first(line, rule["weight"]) if "weight" in rule else 0, weight_unit)
            volume = n.volume_l(*(_first(line, rule[k]) if k in rule else 0 for k in ("length", "width", "height")),
                                dimension_unit)
        except Unusable as exc:
            draft.problem(where, str(exc))
            continue
        items.append({"sku": sku[:64], "description": n.text(_first(line, rule.get("description", "name")))[:200],
                      "quantity": quantity, "weight_kg": weight, "volume_l": volume})
    draft.fields["items"] = items
