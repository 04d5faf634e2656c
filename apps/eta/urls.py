from django.urls import path

from .api import EtaAccuracyView

urlpatterns = [
    path("eta-accuracy/", EtaAccuracyView.as_view(), name="eta-accuracy"),
]
