from django.urls import path

from .api import LocationBatchView

urlpatterns = [
    path("locations/", LocationBatchView.as_view(), name="location-batch"),
]
