from django.apps import AppConfig


class EtaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.eta"
    label = "eta"
    verbose_name = "ETAs"
