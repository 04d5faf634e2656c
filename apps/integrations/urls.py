from rest_framework.routers import SimpleRouter

from .api import ConnectionViewSet, InboundMessageViewSet, MappingViewSet

router = SimpleRouter()
router.register("integrations/connections", ConnectionViewSet, basename="connection")
router.register("integrations/messages", InboundMessageViewSet, basename="inbound-message")
router.register("integrations/mappings", MappingViewSet, basename="mapping")

urlpatterns = router.urls
