from rest_framework.routers import SimpleRouter

from .api.fleet import DriverViewSet, HubViewSet, VehicleViewSet
from .api.orders import OrderViewSet
from .api.routes import RouteViewSet, StopViewSet

router = SimpleRouter()
router.register("hubs", HubViewSet, basename="hub")
router.register("vehicles", VehicleViewSet, basename="vehicle")
router.register("drivers", DriverViewSet, basename="driver")
router.register("orders", OrderViewSet, basename="order")
router.register("routes", RouteViewSet, basename="route")
router.register("stops", StopViewSet, basename="stop")

urlpatterns = router.urls
