from django.urls import re_path

from . import hooks

# Both spellings match directly (no APPEND_SLASH redirect); see hooks.py.
urlpatterns = [
    re_path(r"^noop/?$", hooks.noop, name="hook-noop"),
    re_path(r"^(?P<token>[A-Za-z0-9_-]{8,64})/?$", hooks.receive, name="hook-receive"),
]
