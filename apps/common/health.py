from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Readiness (database, Redis, queue) comes with the production issue."""
    return JsonResponse({"status": "ok"})


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Resolved per request: with hashed static names the URL exists only after collectstatic.
    return HttpResponsePermanentRedirect(static("common/favicon.svg"))
