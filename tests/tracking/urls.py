"""The project's URLs plus the location endpoint, until config/urls.py includes
apps.tracking.urls itself (then this is harmless: the first match is the same view)."""

from django.urls import include, path

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("api/v1/", include("apps.tracking.urls")), *project_urlpatterns]
