from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("console/", views.console, name="console"),
    path("console/reports/", views.reports, name="console-reports"),
    path("console/eta-accuracy/", views.eta_accuracy, name="console-eta-accuracy"),
]
