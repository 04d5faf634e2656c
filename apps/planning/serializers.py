"""Output shapes of the planning API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import OpsException, PlanningPolicy, PlanRun


@extend_schema_field({"type": "object", "description": "routes (driver, vehicle, stops with planned arrivals),"
                      " unassigned orders with a code and a reason, totals, engine, notes"})
class DraftField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "description": "moved stops, per-route before/after sequences, unassigned,"
                      " before/after distance_m, duration_s, late and at_risk visit counts"})
class DiffField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "description": "elapsed_s, time_left_s, best_cost, engine"})
class ProgressField(serializers.JSONField):
    pass


class PlanRunSerializer(serializers.ModelSerializer):
    result = DraftField(read_only=True)
    diff = DiffField(read_only=True)
    progress = ProgressField(read_only=True)

    class Meta:
        model = PlanRun
        fields = ["id", "kind", "status", "stage", "progress", "hub", "date", "time_limit_s", "driver_ids", "order_ids",
                  "route_ids", "result", "diff", "error", "attempts", "requested_by", "created_at", "started_at",
                  "finished_at", "published_at"]


class OpsExceptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = OpsException
        fields = ["id", "kind", "status", "route", "driver", "order", "stop", "details", "replan", "reported_by",
                  "created_at", "updated_at"]


class PlanningPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = PlanningPolicy
        fields = ["auto_apply", "failed_delivery", "replan_time_limit_s", "coalesce_s"]
