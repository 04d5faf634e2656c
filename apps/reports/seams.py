"""Where reports read figures that other capabilities own, one function each, so every
report (summary rebuild, raw baseline, drill-down) reads them the same way.

- Proof of delivery: the ``ProofOfDelivery`` records of the stop (apps/pod).
- ETA accuracy: the ETA current when the driver set off towards the stop, kept once
  per stop by the ETA engine (apps/eta ``StopPrediction.departure_eta``).
- Webhook success: the outbound delivery log (apps/integrations ``WebhookDelivery``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, F, OuterRef

# Annotation name -> the PodRequirement it proves.
POD_FLAGS = {
    "pod_photo": "photo",
    "pod_signature": "signature",
    "pod_recipient": "recipient_name",
    "pod_pin": "pin",
    "pod_barcode": "barcode",
    "pod_notes": "notes",
}


def attempt_annotations() -> dict[str, Any]:
    """Per-stop annotations the two seams below read (one EXISTS each, no row fan-out)."""
    from apps.pod.models import ProofOfDelivery

    pods = ProofOfDelivery.objects.filter(stop_id=OuterRef("pk"))
    return {
        "pod_photo": Exists(pods.filter(photos__isnull=False)),
        "pod_signature": Exists(pods.filter(signature__isnull=False)),
        "pod_recipient": Exists(pods.exclude(recipient_name="")),
        "pod_pin": Exists(pods.filter(pin_verified=True)),
        "pod_barcode": Exists(pods.exclude(barcode="")),
        "pod_notes": Exists(pods.exclude(notes="")),
        "predicted_departure": F("prediction__departure_eta"),
    }


def pod_proofs_captured(stop: Mapping[str, Any]) -> frozenset[str]:
    """The kinds of proof (``PodRequirement`` values) captured at a completed stop: what
    its POD records hold, plus the driver's note on the stop itself."""
    captured = {kind for flag, kind in POD_FLAGS.items() if stop.get(flag)}
    if (stop.get("notes") or "").strip():
        captured.add("notes")
    return frozenset(captured)


def stop_predicted_arrival(stop: Mapping[str, Any]) -> datetime | None:
    """The arrival predicted for a stop before the driver got there: the ETA when the
    driver set off towards it (the ETA engine's departure horizon, docs/eta.md); for a
    stop the engine never predicted, its last ETA, then its planned arrival."""
    return stop.get("predicted_departure") or stop.get("eta") or stop.get("planned_arrival")


def webhook_delivery_success(*, org_id: int, source: str | None, date_from: Any, date_to: Any) -> dict[str, Any]:
    """Outbound webhook deliveries written in the date range (for ``source``'s endpoints
    when given): how many succeeded of those that finished (succeeded or dead-lettered);
    deliveries still being retried are counted apart, not as failures."""
    from apps.integrations.models import DeliveryStatus, WebhookDelivery

    qs = WebhookDelivery.objects.filter(org_id=org_id, created_at__date__gte=date_from, created_at__date__lte=date_to)
    if source is not None:
        qs = qs.filter(endpoint__order_source=source)
    counts = {row["status"]: row["n"] for row in qs.values("status").annotate(n=Count("id"))}
    succeeded = counts.get(DeliveryStatus.SUCCEEDED, 0)
    dead = counts.get(DeliveryStatus.DEAD, 0)
    finished = succeeded + dead
    return {"available": True, "success_rate": round(succeeded / finished, 4) if finished else None,
            "attempted": finished + counts.get(DeliveryStatus.PENDING, 0), "succeeded": succeeded, "dead": dead,
            "pending": counts.get(DeliveryStatus.PENDING, 0)}
