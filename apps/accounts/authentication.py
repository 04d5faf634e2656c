from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .services import KEY_PREFIX, api_client_authenticate


class ApiClientPrincipal:
    """Stands in for request.user when a partner system authenticates with a key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, client: Any) -> None:
        self.client = client

    def __str__(self) -> str:
        return f"api_client:{self.client.pk}"


# Names partners reach for by habit. Other parameters are refused only when their value is
# one of our keys (``lm_...``): a signed media URL's ``token`` is not an API key.
_KEY_PARAMS = {"api_key", "apikey", "api-key", "access_token"}


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer lm_...`` or ``X-Api-Key: lm_...``."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClientPrincipal, Any] | None:
        # A key in the URL ends up in proxy logs, browser history and Referer headers:
        # refuse it outright rather than ignore it, so the partner's developer notices.
        if any(name.lower() in _KEY_PARAMS or value.startswith(KEY_PREFIX)
               for name, value in request.query_params.items()):
            raise exceptions.AuthenticationFailed(
                "API keys are not accepted in the URL; send them in the Authorization header.")
        header = request.META.get("HTTP_AUTHORIZATION", "")
        key = ""
        if header:
            parts = header.split()
            if len(parts) == 2 and parts[0].lower() == "bearer":
                key = parts[1]
            elif parts and parts[0].lower() == "bearer":
                raise exceptions.AuthenticationFailed("Malformed Authorization header; use 'Bearer <key>'.")
        key = key or request.META.get("HTTP_X_API_KEY", "")
        if not key:
            return None
        client = api_client_authenticate(key=key)
        if client is None:
            raise exceptions.AuthenticationFailed("The API key is unknown or revoked.")
        return ApiClientPrincipal(client), client

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
