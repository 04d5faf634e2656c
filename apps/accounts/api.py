from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.views import ScopedViewSet
from apps.dispatch.inputs import ApiClientIn, parse

from .models import ApiClient
from .permissions import actor_for_request
from .serializers import ApiClientCreatedSerializer, ApiClientSerializer, MeSerializer
from .services import api_client_create, api_client_revoke


class ApiClientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Keys for partner systems. Admins create and revoke them."""

    queryset = ApiClient.objects.none()
    scope_resource = "accounts"
    serializer_class = ApiClientSerializer

    def scoped(self):
        return ApiClient.objects.filter(org=self.actor.org)

    @extend_schema(request=ApiClientIn, responses={201: ApiClientCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = parse(ApiClientIn, request.data)
        client, key = api_client_create(org=self.actor.org, name=data.name, scopes=data.scopes,
                                        created_by_id=self.actor.user_id, source=data.source)
        body = {**ApiClientSerializer(client).data, "key": key}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiClientSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        return Response(ApiClientSerializer(api_client_revoke(client=self.get_object())).data)


class MeView(APIView):
    """Who am I: the caller's organization, role and scopes."""

    scope_resource = "me"

    def get_permissions(self):
        return []

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        actor = actor_for_request(request)
        user = None
        if actor.user_id is not None:
            u = get_user_model().objects.get(pk=actor.user_id)
            user = {"id": u.pk, "username": u.username, "name": u.get_full_name()}
        return Response({
            "organization": {"id": actor.org.pk, "name": actor.org.name, "slug": actor.org.slug,
                             "timezone": actor.org.timezone},
            "user": user,
            "role": actor.role,
            "scopes": sorted(actor.scopes),
            "driver_id": actor.driver_id,
        })
