from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ExceptionViewSet, PlanViewSet, PolicyView, StopPinView

router = SimpleRouter()
router.register("plans", PlanViewSet, basename="plan")
router.register("exceptions", ExceptionViewSet, basename="exception")

urlpatterns = [
    path("stop-pins/", StopPinView.as_view(), name="stop-pin"),
    path("planning-policy/", PolicyView.as_view(), name="planning-policy"),
    *router.urls,
]
