"""The login form, rate-limited against password guessing.

Failed attempts are counted per username and per client address in fixed windows in
the cache (Redis in production, so every process shares the count). Over the limit the
form answers 429 with Retry-After without checking the password at all, so a guesser
learns nothing and costs us no hashing. A success clears the username's count.
Behind a load balancer, run Daphne with ``--proxy-headers`` so the client address is
the real one (docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.common.ratelimit import window_hit


def _keys(request: HttpRequest) -> list[tuple[str, int]]:
    window = int(time.time() // settings.LOGIN_THROTTLE_WINDOW_S)
    username = (request.POST.get("username") or "").strip().lower()
    # Hashed: usernames are personal data and cache keys show up in monitoring.
    user_key = hashlib.sha256(username.encode()).hexdigest()[:32]
    address = request.META.get("REMOTE_ADDR", "")
    return [(f"login-fail:user:{user_key}:{window}", settings.LOGIN_THROTTLE_PER_USERNAME),
            (f"login-fail:addr:{address}:{window}", settings.LOGIN_THROTTLE_PER_ADDRESS)]


def _retry_after() -> int:
    window = settings.LOGIN_THROTTLE_WINDOW_S
    return int(window - time.time() % window) + 1


class ThrottledLoginView(auth_views.LoginView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        keys = _keys(request)
        if any((cache.get(key) or 0) >= limit for key, limit in keys):
            response = TemplateResponse(request, self.template_name, {
                "form": self.get_form(), "throttled": True, "retry_after_min": max(1, _retry_after() // 60)},
                status=429)
            response["Retry-After"] = str(_retry_after())
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code == 302:
            cache.delete(keys[0][0])
        else:
            for key, _ in keys:
                window_hit(key, window_s=settings.LOGIN_THROTTLE_WINDOW_S)
        return response
