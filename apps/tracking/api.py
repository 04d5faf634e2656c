"""The HTTP side of location pings: a driver's backlog collected while offline."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from pydantic import BaseModel, ConfigDict, Field
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import actor_for_request
from apps.accounts.throttling import ApiClientRateThrottle
from apps.common.exceptions import NotFound, ValidationFailed
from apps.dispatch.inputs import parse
from apps.dispatch.models import Order

from .customer import preferences_set, rating_submit, tracking_snapshot
from .ratelimit import TrackingRateThrottle
from .selectors import tracking_order
from .services import location_receive


class PingIn(BaseModel):
    """One ping, as the driver app sends it over the WebSocket too (docs/realtime.md)."""

    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    accuracy_m: float = Field(ge=0, description="Radius of 68 % confidence, metres")
    speed_mps: float | None = Field(default=None, ge=0)
    heading: float | None = Field(default=None, ge=0, le=360, description="Degrees clockwise from north")
    at: str = Field(description="Device time, ISO 8601 with a UTC offset", examples=["2026-11-23T09:14:02+01:00"])


class LocationBatchIn(BaseModel):
    pings: list[PingIn]


class PingRejection(BaseModel):
    index: int = Field(description="Position of the ping in the batch")
    code: str = Field(description="e.g. invalid_coordinates, future_time, batch_limit (send again)")
    message: str


class LocationBatchOut(BaseModel):
    accepted: int = Field(description="Pings stored, flagged ones included")
    duplicates: int = Field(description="Pings already stored (same device time): dropped")
    rejected: list[PingRejection]
    flagged: int = Field(description="Stored but not shown: inaccurate, an implausible jump, or an old device time")


class LocationBatchView(APIView):
    """``POST /api/v1/locations/``: the signed-in driver's pings, validated one by one.

    The answer is the same acknowledgement the WebSocket sends (``pings.ack``), with 200
    even when some pings are rejected; the client drops rejected pings except
    ``batch_limit`` ones, and retries the whole batch on a 5xx."""

    scope_resource = "stops"  # drivers hold stops:write; HasScope checks it for POST
    throttle_classes = [ApiClientRateThrottle]

    @extend_schema(request=LocationBatchIn, responses=LocationBatchOut)
    def post(self, request: Request) -> Response:
        actor = actor_for_request(request)
        # Dispatchers and API clients hold stops:write too, but a position is only ever
        # a driver's own: whose it is comes from the login, never from the body.
        if not actor.is_driver or actor.driver_id is None:
            raise PermissionDenied("Only a driver sends locations, their own.")
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("pings"), list):
            raise ValidationFailed({"pings": ["Send a JSON object with a list of pings: {\"pings\": [...]}."]})
        return Response(location_receive(org_id=actor.org.pk, driver_id=actor.driver_id, pings=body["pings"]))


# --- the customer's tracking page (no login: the token is the credential) ---------------


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class PreferencesIn(BaseModel):
    """Leave a field out to keep it as it is."""

    model_config = ConfigDict(extra="forbid")

    instructions: str | None = Field(default=None, max_length=500, examples=["Leave it with the neighbour at no. 3"])
    gate_code: str | None = Field(default=None, max_length=32, examples=["4711#"])
    pin: PinIn | None = Field(default=None, description="Where exactly to deliver, as the customer placed it on the map")


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=1000)


class PublicTrackingView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TrackingRateThrottle]

    def order(self, token: str) -> Order:
        order = tracking_order(token=token)
        if order is None:
            raise NotFound("This tracking link does not exist or is no longer valid.")
        return order


class TrackView(PublicTrackingView):
    """``GET /api/v1/track/{token}/``: what the tracking page shows (docs/tracking.md)."""

    @extend_schema(responses={200: dict}, auth=[])
    def get(self, request: Request, token: str) -> Response:
        return Response(tracking_snapshot(order=self.order(token)))


class TrackPreferencesView(PublicTrackingView):
    """``PUT /api/v1/track/{token}/preferences/``: delivery instructions, gate code and
    the confirmed pin, until the driver sets off (409 after that)."""

    @extend_schema(request=PreferencesIn, responses={200: dict}, auth=[])
    def put(self, request: Request, token: str) -> Response:
        order = self.order(token)
        data = parse(PreferencesIn, request.data)
        preferences_set(order=order, instructions=data.instructions, gate_code=data.gate_code,
                        pin=(data.pin.lat, data.pin.lng) if data.pin else None)
        return Response(tracking_snapshot(order=order)["preferences"])


class TrackRatingView(PublicTrackingView):
    """``POST /api/v1/track/{token}/rating/``: one rating per delivered order (409 after that)."""

    @extend_schema(request=RatingIn, responses={201: dict}, auth=[])
    def post(self, request: Request, token: str) -> Response:
        order = self.order(token)
        data = parse(RatingIn, request.data)
        rating = rating_submit(order=order, score=data.score, comment=data.comment)
        return Response({"score": rating.score, "comment": rating.comment}, status=201)
