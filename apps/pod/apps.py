from django.apps import AppConfig


class PodConfig(AppConfig):
    """Proof of delivery: photos, signatures and their integrity (driver PWA issue)."""

    name = "apps.pod"
    label = "pod"
    verbose_name = "Proof of delivery"
