from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import ConnectionViewSet, InboundMessageViewSet, MappingViewSet
from .outbound_api import DeliveryViewSet, EndpointViewSet
from .spreadsheet_api import CsvImportView

router = SimpleRouter()
router.register("integrations/connections", ConnectionViewSet, basename="connection")
router.register("integrations/messages", InboundMessageViewSet, basename="inbound-message")
router.register("integrations/mappings", MappingViewSet, basename="mapping")
router.register("webhooks/endpoints", EndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", DeliveryViewSet, basename="webhook-delivery")

urlpatterns = [path("integrations/csv/", CsvImportView.as_view(), name="csv-import"), *router.urls]
