from rest_framework import serializers

from .models import ApiClient


class ApiClientSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiClient
        fields = ["id", "name", "prefix", "scopes", "source", "created_at", "last_used_at", "revoked_at"]


class ApiClientCreatedSerializer(ApiClientSerializer):
    key = serializers.CharField(help_text="Shown once. Store it now; it cannot be retrieved again.")

    class Meta(ApiClientSerializer.Meta):
        fields = [*ApiClientSerializer.Meta.fields, "key"]


class MeSerializer(serializers.Serializer):
    organization = serializers.DictField()
    user = serializers.DictField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField())
    driver_id = serializers.IntegerField(allow_null=True)
