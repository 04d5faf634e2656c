from django.urls import path

from . import views

urlpatterns = [path("", views.integrations_page, name="console-integrations")]
