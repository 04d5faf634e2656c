"""Output shapes of the integrations API."""

from __future__ import annotations

from rest_framework import serializers

from .models import (
    Connection,
    DeliveryAttempt,
    InboundMessage,
    Mapping,
    MappingVersion,
    WebhookDelivery,
    WebhookEndpoint,
)


class ConnectionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    previous_secret_valid_until = serializers.DateTimeField(source="previous_secret_expires_at", read_only=True)

    class Meta:
        model = Connection
        fields = ["id", "kind", "name", "source", "store", "url", "mapping", "options", "active",
                  "previous_secret_valid_until", "last_reconciled_at", "created_at"]

    def get_url(self, obj: Connection) -> str:
        """Where the partner sends its webhooks."""
        request = self.context.get("request")
        path = f"/hooks/{obj.token}"
        return request.build_absolute_uri(path) if request is not None else path


class ConnectionWithSecretSerializer(ConnectionSerializer):
    """Shown once, when the secret is created or rotated."""

    secret = serializers.CharField(read_only=True)

    class Meta(ConnectionSerializer.Meta):
        fields = [*ConnectionSerializer.Meta.fields, "secret"]


class InboundMessageSerializer(serializers.ModelSerializer):
    connection_name = serializers.CharField(source="connection.name", read_only=True)

    class Meta:
        model = InboundMessage
        fields = ["id", "connection", "connection_name", "received_at", "topic", "status", "attention", "reason",
                  "problems", "external_id", "source_updated_at", "order", "duplicates", "attempts", "overrides",
                  "processed_at", "body_sha256", "raw_purged_at"]


class InboundMessageDetailSerializer(InboundMessageSerializer):
    headers = serializers.JSONField(read_only=True)
    body = serializers.SerializerMethodField()

    class Meta(InboundMessageSerializer.Meta):
        fields = [*InboundMessageSerializer.Meta.fields, "headers", "body"]

    def get_body(self, obj: InboundMessage) -> str:
        """The raw body as received (UTF-8; undecodable bytes shown as U+FFFD)."""
        return bytes(obj.body).decode("utf-8", errors="replace")


class MappingVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MappingVersion
        fields = ["version", "spec", "created_by", "created_at"]


class MappingSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = Mapping
        fields = ["id", "name", "current", "created_at"]

    def get_current(self, obj: Mapping) -> dict | None:
        version = obj.current
        return MappingVersionSerializer(version).data if version else None


class TryResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="True when the payload would be applied without a person")
    action = serializers.CharField()
    external_id = serializers.CharField()
    order = serializers.JSONField(allow_null=True, help_text="The normalized order, as the orders API would store it")
    problems = serializers.ListField(child=serializers.DictField())


class EndpointSerializer(serializers.ModelSerializer):
    previous_secret_valid_until = serializers.DateTimeField(source="previous_secret_expires_at", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "taxonomy", "status_mapping", "active", "disabled_reason",
                  "previous_secret_valid_until", "created_at"]


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_…: verify our signatures with it (Standard Webhooks)")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    endpoint_url = serializers.CharField(source="endpoint.url", read_only=True)
    sequence = serializers.IntegerField(source="event.sequence", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "endpoint_url", "webhook_id", "event_type", "sequence", "status", "attempts",
                  "next_attempt_at", "last_status_code", "last_error", "created_at", "delivered_at", "payload"]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["id", "attempted_at", "request_headers", "status_code", "response_body", "latency_ms", "error"]


class ReplayResultSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()
