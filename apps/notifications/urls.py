from django.urls import path

from .api import OrderMessagesView, TrackPushView, TwilioInboundView, TwilioStatusView

urlpatterns = [
    path("orders/<int:order_id>/messages/", OrderMessagesView.as_view(), name="order-messages"),
    path("notifications/twilio/status/", TwilioStatusView.as_view(), name="twilio-status"),
    path("notifications/twilio/inbound/", TwilioInboundView.as_view(), name="twilio-inbound"),
    path("track/<str:token>/push/", TrackPushView.as_view(), name="track-push"),
]
