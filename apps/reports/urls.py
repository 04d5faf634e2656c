from django.urls import path

from . import api

urlpatterns = [
    path("reports/kpis/", api.KpisView.as_view(), name="report-kpis"),
    path("reports/series/", api.SeriesView.as_view(), name="report-series"),
    path("reports/breakdown/", api.BreakdownView.as_view(), name="report-breakdown"),
    path("reports/orders/", api.OrdersView.as_view(), name="report-orders"),
    path("reports/options/", api.OptionsView.as_view(), name="report-options"),
    path("reports/export/", api.ExportView.as_view(), name="report-export"),
]
