from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .errors import error_body


class ApiBodyLimitMiddleware:
    """Refuse oversized API bodies with 413 before reading them.

    Django would otherwise raise RequestDataTooBig only when the body is read,
    deep inside parsing, and render it as a generic 400.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return JsonResponse(error_body("malformed_request", "Content-Length is not a number."), status=400)
            limit = body_limit(request.path)
            if length > limit:
                return JsonResponse(
                    error_body("payload_too_large", f"The request body is {length} bytes; the limit is {limit}."),
                    status=413,
                )
        return self.get_response(request)


# Multipart framing around one file: boundaries, part headers and the small form fields.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


def body_limit(path: str) -> int:
    """Photo uploads may be larger than JSON bodies; the file itself is checked again
    against POD_MAX_UPLOAD_BYTES once parsed (apps/pod/media.py)."""
    if path.startswith("/api/v1/pod/media"):
        return settings.POD_MAX_UPLOAD_BYTES + UPLOAD_OVERHEAD_BYTES
    return settings.API_MAX_BODY_BYTES
