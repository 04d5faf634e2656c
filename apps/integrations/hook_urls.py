from django.conf import settings
from django.urls import re_path

from . import hooks

# Both spellings match directly (no APPEND_SLASH redirect); see hooks.py.
urlpatterns = [
    re_path(r"^(?P<token>[A-Za-z0-9_-]{8,64})/?$", hooks.receive, name="hook-receive"),
]
if settings.INBOUND_NOOP_ENDPOINT:
    # bench/inbound.py's baseline: the same server answering without verifying or storing.
    # Only when asked for: a production deployment has no use for an open no-op route.
    urlpatterns.insert(0, re_path(r"^noop/?$", hooks.noop, name="hook-noop"))
