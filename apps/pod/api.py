"""The POD API: media upload and signed download, driver actions, PODs, exceptions,
and the completion rules of a route's stops."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import actor_for_request
from apps.accounts.throttling import ApiClientRateThrottle
from apps.common.errors import error_body
from apps.common.exceptions import ValidationFailed
from apps.common.views import ScopedViewSet
from apps.dispatch import selectors as dispatch_selectors
from apps.dispatch.inputs import parse
from apps.dispatch.models import Stop
from apps.dispatch.serializers import StopSerializer

from . import selectors, services
from .inputs import DriverActionIn, ResolveIn
from .media import PayloadTooLarge
from .models import MediaKind, PodMedia, ProofOfDelivery
from .serializers import (
    ActionResultSerializer,
    ExceptionSerializer,
    PodSerializer,
    StopRulesSerializer,
    UploadResultSerializer,
)
from .signing import RENDITIONS, read_grant, sign_media

UploadIn = inline_serializer("PodMediaUpload", {
    "file": serializers.FileField(help_text="JPEG, PNG or WebP, up to POD_MAX_UPLOAD_BYTES (15 MB)"),
    "kind": serializers.ChoiceField(choices=MediaKind.choices),
    "sha256": serializers.CharField(required=False, help_text="SHA-256 the device computed; checked against the bytes"),
    "stop": serializers.IntegerField(required=False),
})


class MediaUploadView(APIView):
    """``POST /api/v1/pod/media/``: one photo or signature, multipart. Idempotent by
    content: the same bytes again answer 200 with the stored file instead of 201."""

    scope_resource = "stops"
    throttle_classes = [ApiClientRateThrottle]
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": UploadIn}, responses={201: UploadResultSerializer,
                                                                        200: UploadResultSerializer})
    def post(self, request: Request) -> Response:
        actor = actor_for_request(request)
        try:
            upload = request.FILES.get("file")
        except SuspiciousOperation as exc:
            # e.g. more files than DATA_UPLOAD_MAX_NUMBER_FILES: Django refuses to parse on.
            raise ParseError(f"The upload cannot be read: {exc}") from None
        kind = request.data.get("kind")
        errors: dict[str, list[str]] = {}
        if upload is None:
            errors["file"] = ["Attach the image as the multipart field 'file'."]
        if kind not in MediaKind.values:
            errors["kind"] = [f"Must be one of {', '.join(MediaKind.values)}."]
        claimed = (request.data.get("sha256") or "").strip().lower()
        if claimed and (len(claimed) != 64 or any(c not in "0123456789abcdef" for c in claimed)):
            errors["sha256"] = ["Must be 64 hexadecimal characters."]
        stop = None
        raw_stop = request.data.get("stop")
        if raw_stop not in (None, ""):
            if not (str(raw_stop).isascii() and str(raw_stop).isdigit()) or int(raw_stop) > dispatch_selectors.MAX_ID:
                errors["stop"] = ["Must be a positive integer id."]
            else:
                stop = dispatch_selectors.stop_list(actor=actor).filter(pk=int(raw_stop)).first()
                if stop is None:
                    errors["stop"] = ["No such stop."]
        if errors:
            raise ValidationFailed(errors)
        # Checked before reading: a body just under the request limit may still carry a
        # file over the file limit.
        if upload.size > settings.POD_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"The file is {upload.size:,} bytes; the limit is {settings.POD_MAX_UPLOAD_BYTES:,} bytes.")
        data = upload.read()
        media, created = services.media_upload(actor=actor, kind=kind, data=data, claimed_sha256=claimed, stop=stop)
        media.created = created  # type: ignore[attr-defined]
        body = UploadResultSerializer(media, context={"actor": actor}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class DriverActionView(APIView):
    """``POST /api/v1/driver/actions/``: arrive, complete or fail a stop, keyed by the
    UUID the app generated. A retry of the same id returns the first answer (with the
    header ``Idempotent-Replayed: true``); the same id with other content is a 409."""

    scope_resource = "stops"
    throttle_classes = [ApiClientRateThrottle]

    @extend_schema(request=DriverActionIn, responses={200: ActionResultSerializer})
    def post(self, request: Request) -> Response:
        actor = actor_for_request(request)
        if not actor.is_driver or actor.driver_id is None:
            raise PermissionDenied("Driver actions are a driver's own; dispatchers use /api/v1/stops/.")
        data = parse(DriverActionIn, request.data)
        stored, replayed = services.driver_action_apply(
            actor=actor, data=data,
            # The service decided this driver may act on the stop (it may have left their
            # route while they were offline); show it as it now is.
            render_stop=lambda stop: StopSerializer(
                Stop.objects.select_related("order", "route").prefetch_related("order__items").get(pk=stop.pk)).data,
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return Response(stored.response, status=status.HTTP_200_OK, headers=headers)


class PodViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = ProofOfDelivery.objects.none()
    scope_resource = "stops"
    serializer_class = PodSerializer

    def scoped(self):
        params = self.request.query_params if self.action == "list" else {}
        return selectors.pod_list(actor=self.actor, params=params)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "actor": self.actor} if self.request else super().get_serializer_context()

    @extend_schema(parameters=[OpenApiParameter("order", int), OpenApiParameter("stop", int)])
    def list(self, request: Request) -> Response:
        return super().list(request)


class ExceptionViewSet(mixins.ListModelMixin, ScopedViewSet):
    """Open dispatcher exceptions: stops completed twice, completions after an order closed."""

    queryset = selectors.DispatchException.objects.none()
    scope_resource = "routes"
    serializer_class = ExceptionSerializer

    def scoped(self):
        if self.actor.is_driver:
            return self.queryset.none()
        return selectors.exception_list(actor=self.actor, open_only=self.action == "list")

    @extend_schema(request=ResolveIn, responses=ExceptionSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        data = parse(ResolveIn, request.data or {})
        exception = services.dispatch_exception_resolve(actor=self.actor, exception=self.get_object(), note=data.note)
        return Response(ExceptionSerializer(exception).data)


class RouteRulesView(APIView):
    """``GET /api/v1/pod/requirements/?route=<id>``: what each stop needs to be completed."""

    scope_resource = "stops"
    throttle_classes = [ApiClientRateThrottle]

    @extend_schema(parameters=[OpenApiParameter("route", int, required=True)],
                   responses=inline_serializer("RouteRules", {"results": StopRulesSerializer(many=True)}))
    def get(self, request: Request) -> Response:
        actor = actor_for_request(request)
        raw = request.query_params.get("route", "")
        if not (raw.isascii() and raw.isdigit()) or int(raw) > dispatch_selectors.MAX_ID:
            raise ValidationFailed({"route": ["Must be a positive integer id."]})
        return Response({"results": selectors.route_requirements(actor=actor, route_id=int(raw))})


class TrackingPodView(APIView):
    """``GET /api/v1/tracking/<token>/pod/``: the delivery photos a customer's tracking
    page may show (display copies only, and only when the organization allows it)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # the token is 256 random bits: nothing to guess

    @extend_schema(responses=inline_serializer("TrackingPod", {
        "delivered_at": serializers.DateTimeField(allow_null=True),
        "photos": serializers.ListField(child=serializers.CharField(), help_text="Signed display-copy URLs"),
    }))
    def get(self, request: Request, token: str) -> Response:
        from apps.tracking.selectors import tracking_order

        order = tracking_order(token=token)
        if order is None:
            raise NotFound("Not found.")
        if not selectors.tracking_shares_photos(org_id=order.org_id):
            return Response({"delivered_at": order.completed_at if order.outcome == "delivered" else None,
                             "photos": []})
        pod = selectors.tracking_pod(order=order)
        photos = [sign_media(media_id=m.pk, rendition="display", audience=f"track:{order.pk}")
                  for m in (pod.photos.all() if pod else [])]
        return Response({"delivered_at": order.completed_at if order.outcome == "delivered" else None,
                         "photos": photos})


# --- serving media ---------------------------------------------------------------------

_SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Even if a browser were talked into rendering it as a document, it could do nothing.
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


def _denied(code: str, message: str, status_code: int) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status_code)
    for key, value in _SAFE_HEADERS.items():
        response[key] = value
    return response


@require_GET
def media_file(request: HttpRequest, media_id: int, rendition: str) -> HttpResponse:
    """A signed media URL. Display and thumbnail copies are re-encoded images shown
    inline; the original is evidence, only ever a download (``application/octet-stream``,
    ``attachment``), never rendered by the browser."""
    if rendition not in RENDITIONS:
        return _denied("not_found", "Not found.", 404)
    grant = read_grant(request.GET.get("t", ""), media_id=media_id, rendition=rendition)
    if grant is None:
        return _denied("invalid_signature", "This media link is invalid or has expired; reload the page.", 403)
    media = PodMedia.objects.filter(pk=media_id).first()
    if media is None:
        return _denied("not_found", "Not found.", 404)
    kind, _, ident = grant.audience.partition(":")
    if kind == "org":
        membership = getattr(request.user, "membership", None) if request.user.is_authenticated else None
        if membership is None or str(membership.org_id) != ident or ident != str(media.org_id):
            return _denied("not_found", "Not found.", 404)
    elif kind == "track":
        if rendition != "display" or not ProofOfDelivery.objects.filter(order_id=ident, org_id=media.org_id).filter(
                photos=media).exists() or not selectors.tracking_shares_photos(org_id=media.org_id):
            return _denied("not_found", "Not found.", 404)
    else:
        return _denied("not_found", "Not found.", 404)
    if media.purged_at is not None:
        return _denied("media_purged", "This file was deleted after the organization's retention period; "
                       "the proof of delivery and the file's SHA-256 are kept.", 410)
    name = getattr(media, rendition)
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError:
        return _denied("not_found", "The file is missing from storage.", 404)
    if rendition == "original":
        response = FileResponse(handle, content_type="application/octet-stream", as_attachment=True,
                                filename=f"pod-{media.sha256[:16]}.{media.original_format.lower()}")
        response["X-Content-SHA256"] = media.sha256
    else:
        response = FileResponse(handle, content_type=media.display_content_type)
        response["Content-Disposition"] = "inline"
    for key, value in _SAFE_HEADERS.items():
        response[key] = value
    response["Cache-Control"] = "private, max-age=300"
    return response

