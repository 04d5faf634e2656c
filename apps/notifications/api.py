"""Messages on an order (staff), the Twilio callbacks (signed by Twilio), and Web Push
opt-in on the tracking page (the tracking token)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from pydantic import BaseModel, ConfigDict, Field
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import actor_for_request
from apps.common.exceptions import NotFound
from apps.dispatch.inputs import parse
from apps.dispatch.models import Order
from apps.tracking.api import PublicTrackingView

from .channels.sms import twilio_signature
from .models import Message
from .services import message_status_report, push_subscribe, sms_inbound


class MessageLogSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status = serializers.CharField()
    detail = serializers.CharField()


class MessageSerializer(serializers.ModelSerializer):
    log = MessageLogSerializer(many=True, read_only=True)

    class Meta:
        model = Message
        fields = ["id", "trigger", "channel", "recipient", "subject", "body", "status", "status_detail", "attempts",
                  "next_attempt_at", "provider_id", "created_at", "sent_at", "delivered_at", "log"]


class OrderMessagesView(APIView):
    """``GET /api/v1/orders/{id}/messages/``: every notification of the order, with its
    delivery log (docs/notifications.md)."""

    scope_resource = "orders"

    @extend_schema(responses=MessageSerializer(many=True))
    def get(self, request: Request, order_id: int) -> Response:
        actor = actor_for_request(request)
        if actor.is_driver:
            raise PermissionDenied("Customer messages are for dispatchers.")
        order = Order.objects.filter(org=actor.org, pk=order_id).first()
        if order is None:
            raise NotFound("No such order.")
        messages = Message.objects.filter(org=actor.org, order=order).prefetch_related("log")
        return Response(MessageSerializer(messages, many=True).data)


class TwilioView(APIView):
    """Twilio's webhooks: form-encoded, signed with X-Twilio-Signature (the auth token)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    def verified(self, request: Request) -> dict[str, str]:
        token = settings.TWILIO_AUTH_TOKEN
        params = {key: request.data.get(key) for key in request.data}
        expected = twilio_signature(auth_token=token, url=request.build_absolute_uri(), params=params) if token else ""
        import hmac

        if not token or not hmac.compare_digest(expected, request.headers.get("X-Twilio-Signature", "")):
            raise AuthenticationFailed("Bad or missing Twilio signature.")
        return params


class TwilioStatusView(TwilioView):
    """``POST /api/v1/notifications/twilio/status/?message=<id>``: delivery reports
    (StatusCallback). ``message`` is our id, set on the callback URL at send time and
    covered by Twilio's signature (it signs the full URL)."""

    @extend_schema(request=None, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        params = self.verified(request)
        detail = " ".join(filter(None, [params.get("ErrorCode", ""), params.get("ErrorMessage", "")]))
        reference = request.query_params.get("message", "")
        message_status_report(provider_id=params.get("MessageSid", ""), provider_status=params.get("MessageStatus", ""),
                              detail=detail, reference=int(reference) if reference.isdigit() else None)
        return Response(status=204)


class TwilioInboundView(TwilioView):
    """``POST /api/v1/notifications/twilio/inbound/``: texts from customers; "STOP" opts out.
    (Twilio also stops delivery itself on STOP; recording it keeps us from trying.)"""

    @extend_schema(request=None, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        params = self.verified(request)
        sms_inbound(sender=params.get("From", ""), body=params.get("Body", ""))
        return Response(status=204)


class PushKeysIn(BaseModel):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class PushSubscriptionIn(BaseModel):
    """A browser's PushSubscription.toJSON()."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(pattern=r"^https://", max_length=1000)
    keys: PushKeysIn


class TrackPushView(PublicTrackingView):
    """``POST /api/v1/track/{token}/push/``: the customer opts in to Web Push on this device."""

    @extend_schema(request=PushSubscriptionIn, responses={201: inline_serializer("PushOptIn", {
        "subscribed": serializers.BooleanField()})}, auth=[])
    def post(self, request: Request, token: str) -> Response:
        order = self.order(token)
        data = parse(PushSubscriptionIn, request.data)
        push_subscribe(order=order, endpoint=data.endpoint, p256dh=data.keys.p256dh, auth=data.keys.auth)
        return Response({"subscribed": True}, status=201)
