"""JSON Schemas of every message the server sends over a live socket.

They are the machine-checked form of docs/realtime.md: tests validate real messages
from every endpoint against them, so the documentation cannot drift from the wire.
"""

from __future__ import annotations

from typing import Any

_INT = {"type": "integer", "minimum": 0}
_EVENT = {
    "type": "object",
    "required": ["seq", "type", "subject_type", "subject_id", "actor", "payload", "at"],
    "properties": {
        "seq": {"type": "integer", "minimum": 1},
        "type": {"type": "string", "pattern": r"^[a-z_]+\.[a-z_]+$"},
        "subject_type": {"type": "string"},
        "subject_id": {"type": "string"},
        "actor": {"type": "string", "pattern": r"^(system|user:\d+|api_client:\d+)$"},
        "payload": {"type": "object"},
        "at": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}
_POSITION = {
    "type": "object",
    "required": ["driver_id", "lat", "lng", "at"],
    "properties": {
        "driver_id": {"type": "integer"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lng": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy_m": {"type": ["number", "null"]},
        "speed_mps": {"type": ["number", "null"]},
        "heading": {"type": ["number", "null"]},
        "at": {"type": "string"},
    },
}


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
# One order's live delivery facts on its tracking page (apps/tracking/privacy.py).
_DELIVERY = {
    "type": "object",
    "required": ["eta", "window_from", "window_to", "stops_away", "late_risk", "driver"],
    "additionalProperties": False,
    "properties": {
        "eta": _NULLABLE_TIME, "window_from": _NULLABLE_TIME, "window_to": _NULLABLE_TIME,
        "stops_away": {"type": ["integer", "null"], "minimum": 0}, "late_risk": {"type": "boolean"},
        "driver": {"oneOf": [{"type": "null"}, {
            "type": "object", "required": ["first_name", "position"], "additionalProperties": False,
            "properties": {"first_name": {"type": "string"}, "position": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["lat", "lng", "at"], "additionalProperties": False,
                "properties": {"lat": {"type": "number"}, "lng": {"type": "number"}, "at": {"type": "string"}}}]}}}]},
    },
}


def _message(type_: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", *required],
        "properties": {"type": {"const": type_}, **properties},
        "additionalProperties": False,
    }


MESSAGE_SCHEMAS: dict[str, dict[str, Any]] = {
    "welcome": _message("welcome", ["audience", "seq", "heartbeat_s"], {
        "audience": {"enum": ["console", "driver", "track"]}, "seq": _INT, "heartbeat_s": {"type": "number"}}),
    "snapshot": _message("snapshot", ["seq", "reason", "data"], {
        "seq": _INT, "reason": {"type": "string"}, "data": {"type": "object"},
        "pages": {"type": "integer", "minimum": 1}}),
    # A large snapshot's lists, in order, after a ``snapshot`` with ``pages`` (apps/realtime/snapshot_pages.py).
    "snapshot.page": _message("snapshot.page", ["seq", "page", "data"], {
        "seq": _INT, "page": {"type": "integer", "minimum": 1},
        "data": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
            "routes": {"type": "array"}, "drivers": {"type": "array"},
            "positions": {"type": "array", "items": _POSITION}}}}),
    "snapshot.end": _message("snapshot.end", ["seq", "pages"], {"seq": _INT, "pages": {"type": "integer", "minimum": 1}}),
    "events": _message("events", ["events"], {
        "events": {"type": "array", "items": _EVENT}, "replayed": {"type": "boolean"}, "seq": _INT}),
    "heartbeat": _message("heartbeat", ["seq"], {"seq": _INT}),
    "positions": _message("positions", ["positions"], {"positions": {"type": "array", "items": _POSITION}}),
    "etas": _message("etas", ["route_id", "etas"], {
        "route_id": {"type": "integer"},
        "etas": {"type": "array", "items": {
            "type": "object", "required": ["stop_id", "order_id", "eta", "late_risk"], "additionalProperties": False,
            "properties": {"stop_id": {"type": "integer"}, "order_id": {"type": "integer"},
                           "eta": {"type": "string", "format": "date-time"}, "late_risk": {"type": "boolean"}}}}}),
    "delivery": _message("delivery", ["delivery"], {"delivery": _DELIVERY}),
    "pings.ack": _message("pings.ack", ["accepted", "duplicates", "rejected", "flagged"], {
        "accepted": _INT, "duplicates": _INT, "flagged": _INT,
        "rejected": {"type": "array", "items": {
            "type": "object", "required": ["index", "code", "message"],
            "properties": {"index": _INT, "code": {"type": "string"}, "message": {"type": "string"}}}}}),
    "revoked": _message("revoked", ["message"], {"message": {"type": "string"}}),
    "error": _message("error", ["code", "message"], {"code": {"type": "string"}, "message": {"type": "string"}}),
}

SNAPSHOT_DATA: dict[str, dict[str, Any]] = {
    "console": {"type": "object", "required": ["date", "routes", "drivers", "positions"],
                "properties": {"routes": {"type": "array"}, "drivers": {"type": "array"},
                               "positions": {"type": "array", "items": _POSITION}}},
    "driver": {"type": "object", "required": ["routes"], "properties": {"routes": {"type": "array"}}},
    "track": {"type": "object", "required": ["order", "eta", "delivery", "timeline", "preferences", "brand", "pod_url",
                                             "rating", "can_rate"], "properties": {
        "order": {"type": "object", "required": ["reference", "state", "outcome", "window_start", "window_end"]},
        "eta": {"type": ["string", "null"]},
        "delivery": {"oneOf": [{"type": "null"}, _DELIVERY]},
        "timeline": {"type": "array"}, "preferences": {"type": "object"}, "brand": {"type": "object"}}},
}
