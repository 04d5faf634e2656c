from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from apps.accounts.api import ApiClientViewSet, MeView
from apps.accounts.login import ThrottledLoginView
from apps.common.health import favicon, healthz, metrics_view, readyz
from apps.events.api import EventViewSet
from apps.tracking.views import track_page

api_router = SimpleRouter()
api_router.register("events", EventViewSet, basename="event")
api_router.register("api-clients", ApiClientViewSet, basename="api-client")

api_v1 = [
    path("me/", MeView.as_view(), name="me"),
    path("", include("apps.dispatch.urls")),
    path("", include("apps.tracking.urls")),
    path("", include("apps.pod.urls")),
    path("", include("apps.integrations.urls")),
    path("", include("apps.reports.urls")),
    path("", include("apps.planning.urls")),
    path("", include("apps.eta.urls")),
    path("", include("apps.notifications.urls")),
    path("", include(api_router.urls)),
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("hooks/", include("apps.integrations.hook_urls")),
    path("console/integrations/", include("apps.integrations.console_urls")),
    path("track/<str:token>/", track_page, name="track-page"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", favicon),
    path("", include("apps.pod.page_urls")),
    path("", include("apps.console.urls")),
]

handler404 = "apps.common.errors.json_not_found"
handler500 = "apps.common.errors.json_server_error"
