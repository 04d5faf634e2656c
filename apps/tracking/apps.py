from django.apps import AppConfig


class TrackingConfig(AppConfig):
    """Driver locations and the customer tracking page (live-operations and customer issues)."""

    name = "apps.tracking"
    label = "tracking"
    verbose_name = "Tracking"
