from django.urls import path

from . import views

urlpatterns = [
    path("driver/", views.driver_app, name="driver"),
    path("driver/manifest.webmanifest", views.manifest, name="driver-manifest"),
    path("driver/sw.js", views.service_worker, name="driver-sw"),
]
