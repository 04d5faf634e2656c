from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.exceptions import ValidationFailed
from apps.common.views import ScopedViewSet

from .models import Event
from .selectors import event_last_sequence, event_list
from .serializers import EventPageSerializer, EventSerializer


def _non_negative_int(raw: str | None, name: str, default: int, maximum: int | None = None) -> int:
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValidationFailed({name: ["Must be a non-negative integer."]}, message="The query has invalid filters.")
    value = int(raw)
    return min(value, maximum) if maximum else value


class EventViewSet(ScopedViewSet):
    """The organization's event log, oldest first. Clients keep the last sequence they
    have seen and ask for ``?after=<sequence>``; nothing committed is ever skipped."""

    queryset = Event.objects.none()
    scope_resource = "events"
    serializer_class = EventSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="Only events with a greater sequence"),
            OpenApiParameter("limit", int, description="Page size, at most 1000 (default 100)"),
            OpenApiParameter("type", str, description="Comma-separated event types"),
            OpenApiParameter("subject_type", str),
            OpenApiParameter("subject_id", str),
        ],
        responses=EventPageSerializer,
    )
    def list(self, request: Request) -> Response:
        params = request.query_params
        after = _non_negative_int(params.get("after"), "after", 0)
        limit = max(1, _non_negative_int(params.get("limit"), "limit", 100, maximum=1000))
        texts = {name: params.get(name, "") for name in ("type", "subject_type", "subject_id")}
        if nul := [name for name, value in texts.items() if "\x00" in value]:
            raise ValidationFailed({name: ["Must not contain NUL characters."] for name in nul},
                                   message="The query has invalid filters.")
        types = [t for t in texts["type"].split(",") if t]
        qs = event_list(org=self.actor.org, after=after, types=types,
                        subject_type=params.get("subject_type"), subject_id=params.get("subject_id"))
        page = list(qs[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        return Response({
            "results": EventSerializer(page, many=True).data,
            "next_after": page[-1].sequence if page else after,
            "has_more": has_more,
            "last_sequence": event_last_sequence(org=self.actor.org),
        })
