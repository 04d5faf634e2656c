from rest_framework.throttling import SimpleRateThrottle

from .authentication import ApiClientPrincipal


class ApiClientRateThrottle(SimpleRateThrottle):
    """Per-key rate limit for partner systems; browser sessions are not limited here."""

    scope = "api_client"

    def get_cache_key(self, request, view):
        if isinstance(request.user, ApiClientPrincipal):
            return f"throttle_api_client_{request.user.client.pk}"
        return None
