from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Readiness (database, Redis, queue) comes with the production issue."""
    return JsonResponse({"status": "ok"})
