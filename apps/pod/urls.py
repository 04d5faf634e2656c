from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("pods", api.PodViewSet, basename="pod")
router.register("pod-exceptions", api.ExceptionViewSet, basename="pod-exception")

urlpatterns = [
    path("pod/media/", api.MediaUploadView.as_view(), name="pod-media-upload"),
    path("pod/media/<int:media_id>/<str:rendition>/", api.media_file, name="pod-media-file"),
    path("pod/requirements/", api.RouteRulesView.as_view(), name="pod-requirements"),
    path("tracking/<str:token>/pod/", api.TrackingPodView.as_view(), name="tracking-pod"),
    path("driver/actions/", api.DriverActionView.as_view(), name="driver-actions"),
    *router.urls,
]
