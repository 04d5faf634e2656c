"""Output shapes of the POD API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import DispatchException, PodMedia, ProofOfDelivery
from .selectors import media_urls


class MediaSerializer(serializers.ModelSerializer):
    urls = serializers.SerializerMethodField(help_text="Signed, expiring URLs: display, thumb, original (download); "
                                                       "empty once the files are purged (purged_at)")

    class Meta:
        model = PodMedia
        fields = ["id", "kind", "sha256", "original_format", "original_bytes", "width", "height", "created_at",
                  "purged_at", "urls"]

    @extend_schema_field({"type": "object", "properties": {k: {"type": "string"} for k in ("display", "thumb", "original")}})
    def get_urls(self, media: PodMedia) -> dict[str, str]:
        if media.purged_at is not None:
            return {}
        return media_urls(media, actor=self.context["actor"])


class UploadResultSerializer(MediaSerializer):
    created = serializers.BooleanField(help_text="False: these bytes were already stored (an idempotent retry)")

    class Meta(MediaSerializer.Meta):
        fields = [*MediaSerializer.Meta.fields, "created"]


class PodSerializer(serializers.ModelSerializer):
    photos = MediaSerializer(many=True, read_only=True)
    signature = MediaSerializer(read_only=True, allow_null=True)
    driver_name = serializers.CharField(source="driver.name", read_only=True, default=None)
    address_lat = serializers.FloatField(source="order.lat", read_only=True, allow_null=True)
    address_lng = serializers.FloatField(source="order.lng", read_only=True, allow_null=True)

    class Meta:
        model = ProofOfDelivery
        fields = ["id", "stop", "order", "driver", "driver_name", "action_key", "photos", "signature",
                  "recipient_name", "notes", "pin_verified", "barcode", "age_verified", "device_time", "created_at",
                  "lat", "lng", "accuracy_m", "distance_m", "address_lat", "address_lng", "flags"]


class ExceptionSerializer(serializers.ModelSerializer):
    route = serializers.IntegerField(source="stop.route_id", read_only=True, allow_null=True)

    class Meta:
        model = DispatchException
        fields = ["id", "kind", "message", "stop", "order", "route", "pod", "details", "created_at", "resolved_at"]


class RuleSerializer(serializers.Serializer):
    min_photos = serializers.IntegerField()
    signature = serializers.BooleanField()
    recipient_name = serializers.BooleanField()
    notes = serializers.BooleanField()
    pin = serializers.BooleanField()
    barcode = serializers.BooleanField()
    min_age = serializers.IntegerField()


class StopRulesSerializer(serializers.Serializer):
    stop = serializers.IntegerField()
    order = serializers.IntegerField()
    rules = RuleSerializer()


class ActionResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=["arrive", "complete", "fail"])
    outcome = serializers.ChoiceField(choices=["applied", "ignored", "exception"],
                                      help_text="exception: kept and sent to the dispatcher (e.g. completed twice)")
    pod = serializers.IntegerField(required=False)
    message = serializers.CharField(required=False)
    exception = serializers.DictField(required=False)
    stop = serializers.DictField()
