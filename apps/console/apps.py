from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The dispatcher's back office pages (server-rendered shell; live data over the API)."""

    name = "apps.console"
    label = "console"
