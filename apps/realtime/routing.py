from django.urls import path

from .consumers import ConsoleConsumer, DriverConsumer, TrackConsumer

websocket_urlpatterns = [
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/driver/", DriverConsumer.as_asgi()),
    path("ws/track/<str:token>/", TrackConsumer.as_asgi()),
]
