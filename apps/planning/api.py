"""Planning endpoints: plan the day, follow its progress, publish; exceptions and replans."""

from __future__ import annotations

from datetime import date

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import actor_for_request
from apps.common.exceptions import ValidationFailed
from apps.common.views import ScopedViewSet
from apps.dispatch.inputs import parse
from apps.dispatch.models import Stop

from . import replans, selectors, services
from .inputs import ExceptionIn, PinIn, PlanIn, PolicyIn
from .models import ExceptionStatus, OpsException, PlanKind, PlanningPolicy, PlanRun, PlanStatus
from .serializers import OpsExceptionSerializer, PlanningPolicySerializer, PlanRunSerializer

_CHOICES = {"kind": set(PlanKind.values), "status": set(PlanStatus.values) | set(ExceptionStatus.values)}


def _params(request: Request) -> dict:
    """The list filters, checked: a bad filter is a 400 naming it, never a 500 or a silent empty list."""
    params = {k: request.query_params.get(k) for k in ("date", "kind", "status") if request.query_params.get(k)}
    errors: dict[str, list[str]] = {}
    for name, value in params.items():
        if name == "date":
            try:
                date.fromisoformat(value)
            except ValueError:
                errors[name] = ["Use YYYY-MM-DD."]
        elif value not in _CHOICES[name]:
            errors[name] = [f"Must be one of {', '.join(sorted(_CHOICES[name]))}."]
    if errors:
        raise ValidationFailed(errors, message="The query has invalid filters.")
    return params


class PlanViewSet(mixins.ListModelMixin, ScopedViewSet):
    """Plans of the day (drafts) and replans (proposals)."""

    queryset = PlanRun.objects.none()
    scope_resource = "routes"
    # Drafts and proposals are the dispatcher's tools: drivers (routes:read only)
    # see routes once published, never the plans behind them.
    scope_map = {"list": "routes:write", "retrieve": "routes:write"}
    serializer_class = PlanRunSerializer

    def scoped(self):
        return selectors.plan_list(actor=self.actor, params=_params(self.request) if self.action == "list" else {})

    @extend_schema(parameters=[OpenApiParameter("date", str), OpenApiParameter("kind", str), OpenApiParameter("status", str)])
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(request=PlanIn, responses={202: PlanRunSerializer},
                   description="Queue a plan of the day for a hub (optionally only some drivers or orders). "
                               "Poll the plan, or follow plan.progress events, until it is ready.")
    def create(self, request: Request) -> Response:
        plan = services.plan_request(actor=self.actor, data=parse(PlanIn, request.data))
        return Response(PlanRunSerializer(plan).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=PlanRunSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(PlanRunSerializer(self.get_object()).data)

    @extend_schema(request=None, responses=PlanRunSerializer,
                   description="Create and publish the draft's routes (a day plan), all or nothing.")
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str) -> Response:
        return Response(PlanRunSerializer(services.plan_publish(actor=self.actor, plan=self.get_object())).data)

    @extend_schema(request=None, responses=PlanRunSerializer,
                   description="Apply a proposed replan to its routes (bumps their versions, reroutes the drivers).")
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        return Response(PlanRunSerializer(replans.replan_apply(actor=self.actor, plan=self.get_object())).data)

    @extend_schema(request=None, responses=PlanRunSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str) -> Response:
        return Response(PlanRunSerializer(services.plan_discard(actor=self.actor, plan=self.get_object())).data)


class ExceptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Exceptions during the day; each queues (or joins) a replan of the routes it affects."""

    queryset = OpsException.objects.none()
    scope_resource = "routes"
    scope_map = {"list": "routes:write", "retrieve": "routes:write"}
    serializer_class = OpsExceptionSerializer

    def scoped(self):
        return selectors.exception_list(actor=self.actor, params=_params(self.request) if self.action == "list" else {})

    @extend_schema(parameters=[OpenApiParameter("status", str)])
    def list(self, request: Request) -> Response:
        return super().list(request)

    @extend_schema(request=ExceptionIn, responses={201: OpsExceptionSerializer})
    def create(self, request: Request) -> Response:
        exc = replans.exception_report(actor=self.actor, data=parse(ExceptionIn, request.data))
        return Response(OpsExceptionSerializer(exc).data, status=status.HTTP_201_CREATED)


class StopPinView(APIView):
    """Pin a stop to its driver or its place in the sequence, so replans leave it there."""

    scope_resource = "routes"

    @extend_schema(request=PinIn, responses={204: None})
    def post(self, request: Request) -> Response:
        actor = actor_for_request(request)
        data = parse(PinIn, request.data)
        stop = Stop.objects.filter(org=actor.org, pk=data.stop).first()
        if stop is None:
            raise ValidationFailed({"stop": ["No such stop."]})
        replans.stop_pin_set(actor=actor, stop=stop, kind=data.kind)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PolicyView(APIView):
    """The organization's replan policy: apply automatically or propose; failed deliveries."""

    scope_resource = "routes"

    @extend_schema(responses=PlanningPolicySerializer)
    def get(self, request: Request) -> Response:
        actor = actor_for_request(request)
        return Response(PlanningPolicySerializer(selectors.policy_of(org=actor.org)).data)

    @extend_schema(request=PolicyIn, responses=PlanningPolicySerializer)
    def patch(self, request: Request) -> Response:
        actor = actor_for_request(request)
        data = parse(PolicyIn, request.data)
        policy, _ = PlanningPolicy.objects.get_or_create(org=actor.org)
        for field in data.model_fields_set:
            setattr(policy, field, getattr(data, field))
        policy.save()
        return Response(PlanningPolicySerializer(policy).data)
