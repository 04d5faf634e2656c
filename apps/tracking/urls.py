from django.urls import path

from .api import LocationBatchView, TrackPreferencesView, TrackRatingView, TrackView

urlpatterns = [
    path("locations/", LocationBatchView.as_view(), name="location-batch"),
    path("track/<str:token>/", TrackView.as_view(), name="track"),
    path("track/<str:token>/preferences/", TrackPreferencesView.as_view(), name="track-preferences"),
    path("track/<str:token>/rating/", TrackRatingView.as_view(), name="track-rating"),
]
