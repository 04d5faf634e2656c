from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """WebSocket endpoints and the live side of the event pipeline."""

    name = "apps.realtime"
    label = "realtime"
