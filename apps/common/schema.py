"""OpenAPI post-processing: document the error responses every operation can give,
in the one shape the exception handler produces (docs/api.md)."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "Stable, machine-readable"},
        "message": {"type": "string", "description": "For people"},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                   "description": "Validation errors by dotted field path"},
    },
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    "400": "Invalid input (validation_error, malformed_request)",
    "401": "Not authenticated",
    "403": "Missing scope or role",
    "404": "Not found (or another organization's)",
    "409": "Conflict with the current state (invalid_transition, idempotency_conflict, version_conflict, ...)",
    "413": "Body too large",
    "415": "Not application/json",
    "422": "Breaks a business rule (capacity_exceeded, skill_missing, route_incomplete, open_stops)",
    "429": "Rate limited",
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["400", "401", "403", "429"]
            if "{" in path:
                codes.append("404")
            if method in ("post", "put", "patch", "delete"):
                codes += ["409", "422"]
            if "requestBody" in operation:
                codes += ["413", "415"]
            for code in codes:
                operation["responses"].setdefault(code, {"description": _DESCRIPTIONS[code], "content": ref})
    return result
