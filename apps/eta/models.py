"""What the ETA engine remembers about a stop beyond its current ``Stop.eta``: the
predictions kept for measuring accuracy, and the open late-risk alert."""

from __future__ import annotations

from django.db import models

from apps.accounts.models import Organization
from apps.dispatch.models import Route, Stop


class StopPrediction(models.Model):
    """One row per stop on a dispatched route.

    Accuracy is measured at two horizons (docs/eta.md): ``first_eta`` is the first ETA
    the engine gave once the route was dispatched (what the morning message promised),
    ``departure_eta`` the ETA current when the driver set off towards this stop (left
    the previous stop, or started the route). Both are written once and never moved.
    """

    stop = models.OneToOneField(Stop, on_delete=models.CASCADE, primary_key=True, related_name="prediction")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="stop_predictions")
    route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="predictions")
    first_eta = models.DateTimeField(null=True, blank=True)
    first_eta_at = models.DateTimeField(null=True, blank=True, help_text="When the first ETA was made")
    departure_eta = models.DateTimeField(null=True, blank=True)
    departed_at = models.DateTimeField(null=True, blank=True, help_text="When the driver set off towards the stop")
    # Set while a stop.late_risk alert is open; claimed and released with conditional
    # updates, so two processes seeing the same prediction record the event once.
    late_risk_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stop_id"]
        indexes = [models.Index(fields=["org", "route"], name="stopprediction_org_route_idx")]

    def __str__(self) -> str:
        return f"Prediction for stop {self.stop_id}"
