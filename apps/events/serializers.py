from rest_framework import serializers

from .models import Event


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["sequence", "type", "subject_type", "subject_id", "actor", "payload", "created_at"]


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next_after = serializers.IntegerField(help_text="Pass as ?after= to get the next page")
    has_more = serializers.BooleanField()
    last_sequence = serializers.IntegerField(help_text="The newest sequence number in the organization")
