"""Where reports read figures that other capabilities own. Each is one function, so
when that capability lands the lead points the function at its records and every
report (summary rebuild, raw baseline, drill-down) follows.

- Proof of delivery (apps/pod): today read from what the foundation stores.
- ETA accuracy (apps/eta): today the stop's last ETA before the visit.
- Outbound webhooks (apps/integrations): not available until its delivery log exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def pod_proofs_captured(stop: Mapping[str, Any]) -> frozenset[str]:
    """The kinds of proof (``PodRequirement`` values) captured at a completed stop.

    The foundation has no POD records: the only proof a stop row carries is the
    driver's note (``notes``). So an order requiring a photo or a signature counts as
    incomplete until the POD capability records them; then this function should read
    its ``ProofOfDelivery`` for the stop (photos, signature, recipient name, PIN,
    barcode, notes). ``stop`` is a row with at least ``id`` and ``notes``.
    """
    return frozenset({"notes"}) if (stop.get("notes") or "").strip() else frozenset()


def stop_predicted_arrival(stop: Mapping[str, Any]) -> datetime | None:
    """The arrival time predicted for a stop before the driver got there.

    From the foundation: ``Stop.eta``, which the route's scheduler moves for pending
    stops only (on every visit), so once a stop is visited its ``eta`` is the last
    prediction made before the arrival. Falls back to ``planned_arrival`` (the plan)
    for a stop that never had an ETA. The ETA capability keeps predicted vs actual
    per stop; point this at its record (e.g. the prediction N minutes before arrival).
    """
    return stop.get("eta") or stop.get("planned_arrival")


def webhook_delivery_success(*, org_id: int, source: str | None, date_from: Any, date_to: Any) -> dict[str, Any]:
    """Outbound webhook delivery success for partners: deliveries that succeeded over
    deliveries attempted, per endpoint's partner. Not available until the outbound
    webhooks capability (apps/integrations) keeps a delivery log; then count its
    delivery attempts in the date range (for ``source``'s endpoints when given)."""
    return {"available": False, "success_rate": None, "attempted": None, "succeeded": None,
            "reason": "Outbound webhooks are not recorded yet."}
