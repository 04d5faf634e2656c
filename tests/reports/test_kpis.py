"""Every KPI against the hand-computed history in conftest.py (re-attempts, cancelled
orders, a stop completed offline and synced the next day)."""

from __future__ import annotations

import itertools

import pytest

from apps.dispatch.optimization.travel import StraightLineProvider
from apps.dispatch.timing import haversine_m
from apps.reports.selectors import ReportFilters, report_breakdown, report_kpis, report_series
from apps.reports.summary import summary_rebuild_day
from tests.reports.conftest import COORDS, D1, D2, HUB, PINGS, at


def kpis_for(acme, *, mode="summary", **filters):
    from apps.accounts.actor import system_actor

    f = ReportFilters(actor=system_actor(acme), date_from=filters.pop("date_from", D1),
                      date_to=filters.pop("date_to", D2), **filters)
    return report_kpis(f, mode=mode)["kpis"]


def test_delivered_failed_and_cancelled_over_the_two_days(acme, history):
    k = kpis_for(acme)

    assert (k["attempts"], k["delivered"], k["failed"], k["cancelled"]) == (6, 5, 1, 2)
    assert k["success_rate"] == round(5 / 6, 4)


def test_each_day_counts_its_own_routes_and_cancellations(acme, history):
    monday, tuesday = kpis_for(acme, date_to=D1), kpis_for(acme, date_from=D2)

    # o5 was synced on Tuesday but happened on Monday's route: it is Monday's.
    assert (monday["attempts"], monday["delivered"], monday["failed"], monday["cancelled"]) == (5, 4, 1, 1)
    assert (tuesday["attempts"], tuesday["delivered"], tuesday["failed"], tuesday["cancelled"]) == (1, 1, 0, 1)


def test_a_reattempt_counts_as_an_attempt_but_not_as_a_first_attempt(acme, history):
    both, tuesday = kpis_for(acme), kpis_for(acme, date_from=D2)

    # First attempts: o1, o2 (failed), o3, o5, o6. o2's second try on Tuesday is a re-attempt.
    assert (both["first_attempts"], both["first_attempt_delivered"]) == (5, 4)
    assert both["first_attempt_success_rate"] == 0.8
    assert (tuesday["first_attempts"], tuesday["first_attempt_success_rate"]) == (0, None)


def test_on_time_is_judged_on_the_device_time_of_an_offline_delivery(acme, history):
    k = kpis_for(acme)

    # With a window: o1 on time, o3 late (12:30 > 12:00), o5 on time at 13:30 on the
    # device (the server heard of it on Tuesday, long after its window), o2's retry on
    # time in its new window. o6 has no window. Failed attempts are not judged.
    assert (k["windowed"], k["on_time"], k["early"], k["late"]) == (4, 3, 0, 1)
    assert k["on_time_rate"] == 0.75


def test_failed_deliveries_by_reason(acme, history):
    reasons = kpis_for(acme)["failed_by_reason"]

    assert reasons["recipient_absent"] == 1
    assert sum(reasons.values()) == 1


def test_pod_compliance_needs_every_required_proof(acme, history):
    k = kpis_for(acme)

    # o1 needed a note and has one; o3 needed a photo and no proof was recorded.
    assert (k["pod_required"], k["pod_complete"], k["pod_compliance"]) == (2, 1, 0.5)


def test_eta_accuracy_mean_and_p90(acme, history):
    k = kpis_for(acme)

    # Errors: o1 5 min, o2 10 min, o3 30 min, o5 10 min, o2 retry 10 min; o6 had no prediction.
    assert k["eta_samples"] == 5
    assert k["eta_mean_error_s"] == (300 + 600 + 1800 + 600 + 600) / 5
    # Nearest rank ceil(0.9 x 5) = 5th smallest: the 30-minute error, alone in its bucket (20-30 min].
    assert k["eta_p90_error_s"] == 1800


def test_stops_per_route_and_per_hour(acme, history):
    routes = kpis_for(acme)["routes"]

    assert routes["routes"] == 3
    assert routes["stops_per_route"] == 2.0  # 6 attempts on 3 routes
    # R1: 09:30 (left the hub) to 12:30 = 3 h, 3 attempts. R2: from 13:30 (o5 on the device,
    # before the server saw the route start at 14:00) to 14:05 = 35 min, 2 attempts. R3 is
    # one instant (start and only stop at 10:00) and has no hours to divide by.
    assert routes["stops_per_hour"] == round(5 / ((3 * 3600 + 35 * 60) / 3600), 2)


def test_distance_and_drive_time_planned_vs_actual(acme, history):
    routes = kpis_for(acme)["routes"]
    leg = StraightLineProvider().leg

    def planned(points):
        path = [HUB, *points, HUB]
        return [sum(x) for x in zip(*(leg(a, b) for a, b in itertools.pairwise(path)), strict=True)]

    r1_s, r1_m = planned([COORDS["o1"], COORDS["o2"], COORDS["o3"]])  # o4's stop was cancelled
    r2_s, r2_m = planned([COORDS["o5"], COORDS["o6"]])
    r3_s, r3_m = planned([COORDS["o2"]])
    assert routes["planned_km"] == round((r1_m + r2_m + r3_m) / 1000, 2)
    assert routes["planned_drive_h"] == round((r1_s + r2_s + r3_s) / 3600, 2)
    # Only Bob's Monday route has location history: two 5-minute legs north at ~3 m/s,
    # then 40 minutes parked (a gap longer than 5 minutes is not driving).
    (_, *p1), (_, *p2), (_, *p3) = PINGS[:3]
    assert routes["tracked_routes"] == 1
    assert routes["tracked_planned_km"] == round(r1_m / 1000, 2)
    assert routes["actual_km"] == round(round(haversine_m(*p1, *p2) + haversine_m(*p2, *p3)) / 1000, 2)
    assert routes["actual_drive_h"] == round(600 / 3600, 2)


def test_figures_per_hub_driver_and_source(acme, history):
    from apps.accounts.actor import system_actor

    f = ReportFilters(actor=system_actor(acme), date_from=D1, date_to=D2)
    by_driver = {r["label"]: r for r in report_breakdown(f, by="driver")}
    by_source = {r["label"]: r for r in report_breakdown(f, by="source")}
    by_hub = report_breakdown(f, by="hub")

    assert (by_driver["Bob Baker"]["attempts"], by_driver["Bob Baker"]["routes"]["routes"]) == (4, 2)
    assert (by_driver["Dan Driver"]["attempts"], by_driver["Dan Driver"]["delivered"]) == (2, 2)
    assert by_driver["No driver (cancelled before an attempt)"]["cancelled"] == 2
    assert (by_source["shop"]["attempts"], by_source["shop"]["delivered"], by_source["shop"]["cancelled"]) == (4, 3, 1)
    assert (by_source["erp"]["attempts"], by_source["erp"]["delivered"], by_source["erp"]["cancelled"]) == (2, 2, 1)
    assert by_source["erp"]["routes"] is None  # routes carry both partners' parcels
    assert [(r["attempts"], r["cancelled"]) for r in by_hub] == [(6, 2)]


def test_filters_narrow_the_figures(acme, history):
    dan = kpis_for(acme, driver_id=history["dan"].pk)
    erp = kpis_for(acme, source="erp")

    assert (dan["attempts"], dan["cancelled"], dan["routes"]["routes"]) == (2, 0, 1)
    assert (erp["attempts"], erp["windowed"], erp["on_time"], erp["pod_required"]) == (2, 1, 0, 1)
    assert erp["routes"] is None


def test_the_daily_series_has_every_day_of_the_range(acme, history):
    from apps.accounts.actor import system_actor

    f = ReportFilters(actor=system_actor(acme), date_from=D1.replace(day=22), date_to=D2.replace(day=25))
    series = report_series(f)

    assert [(d["day"], d["attempts"], d["cancelled"]) for d in series] == [
        ("2026-11-22", 0, 0), ("2026-11-23", 5, 1), ("2026-11-24", 1, 1), ("2026-11-25", 0, 0)]


@pytest.mark.parametrize("filters", [{}, {"date_to": D1}, {"source": "shop"}, {"source": "erp"}, {"driver": "bob"},
                                     {"driver": "dan"}, {"hub": True}])
def test_the_summary_tables_give_the_same_figures_as_the_raw_tables(acme, acme_hub, history, filters):
    filters = dict(filters)
    if "driver" in filters:
        filters["driver_id"] = history[filters.pop("driver")].pk
    if filters.pop("hub", None):
        filters["hub_id"] = acme_hub.pk

    assert kpis_for(acme, mode="summary", **filters) == kpis_for(acme, mode="raw", **filters)


def test_webhook_success_counts_finished_deliveries_and_keeps_retries_apart(acme, history):
    from apps.accounts.actor import system_actor
    from apps.integrations.models import WebhookDelivery
    from apps.integrations.services.outbound import endpoint_create

    endpoint = endpoint_create(org=acme, url="https://partner.example.com/hooks", event_types=["*"])
    event = history["orders"]["o1"].org.events.first()
    for n, status in enumerate(["succeeded", "succeeded", "succeeded", "dead", "pending"]):
        WebhookDelivery.objects.create(org=acme, endpoint=endpoint, event_id=event.pk + n, webhook_id=f"msg_{n}",
                                       event_type="order.created", ordering_key=f"order:{n}", payload={},
                                       status=status, next_attempt_at=at(D1, 9))
    WebhookDelivery.objects.update(created_at=at(D1, 10))

    body = report_kpis(ReportFilters(actor=system_actor(acme), date_from=D1, date_to=D2))

    assert body["webhooks"]["available"] is True
    assert (body["webhooks"]["succeeded"], body["webhooks"]["dead"], body["webhooks"]["pending"]) == (3, 1, 1)
    assert body["webhooks"]["success_rate"] == 0.75


def test_a_photo_in_the_pod_records_makes_the_photo_order_compliant(acme, history):
    import uuid

    from apps.pod.models import PodMedia, ProofOfDelivery

    stop = history["stops"]["o3"]
    photo = PodMedia.objects.create(org=acme, kind="photo", sha256="a" * 64, original_format="JPEG", original_bytes=1,
                                    original="o", display="d", thumb="t", display_content_type="image/jpeg",
                                    width=1, height=1)
    ProofOfDelivery.objects.create(org=acme, stop=stop, order=stop.order, action_key=uuid.uuid4()).photos.add(photo)
    summary_rebuild_day(org=acme, day=D1)

    k = kpis_for(acme)
    assert (k["pod_required"], k["pod_complete"], k["pod_compliance"]) == (2, 2, 1.0)


def test_the_eta_at_departure_is_the_prediction_measured(acme, history):
    from apps.eta.models import StopPrediction

    before = kpis_for(acme)
    stop = history["stops"]["o3"]  # ETA 12:00 on the stop, delivered 12:30: 30 minutes off
    StopPrediction.objects.update_or_create(stop=stop, defaults={
        "org": acme, "route": stop.route, "departure_eta": at(D1, 12, 25)})  # 5 minutes off
    summary_rebuild_day(org=acme, day=D1)

    after = kpis_for(acme)
    assert after["eta_samples"] == before["eta_samples"] == 5
    assert after["eta_mean_error_s"] == (300 + 600 + 300 + 600 + 600) / 5


def test_an_arrival_recorded_after_the_delivery_does_not_make_it_late():
    from datetime import UTC, datetime

    from apps.reports.kpis import arrival_time, window_verdict

    delivered = datetime(2026, 11, 23, 11, 50, tzinfo=UTC)
    synced_tap = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # an offline "arrived" tap stamped at sync
    window = (datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 11, 23, 12, tzinfo=UTC))

    assert arrival_time(synced_tap, delivered) == delivered
    assert window_verdict(arrival_time(synced_tap, delivered), *window) == "on_time"
    assert arrival_time(None, delivered) == delivered
    assert arrival_time(datetime(2026, 11, 23, 11, 45, tzinfo=UTC), delivered).minute == 45


def test_the_p90_is_read_from_the_summed_histogram():
    from apps.reports.kpis import ETA_BUCKET_COUNT, eta_bucket, eta_p90_s

    histogram = [0] * ETA_BUCKET_COUNT
    for error in [30] * 9 + [100]:  # nine small errors and one of 100 s (bucket 60-120 s)
        histogram[eta_bucket(error)] += 1

    assert eta_p90_s(histogram) == 60  # rank 9 of 10 is in the first bucket, at its top edge
    histogram[eta_bucket(10_000)] += 10  # ten more beyond two hours
    assert eta_p90_s(histogram) == 7200  # "at least 2 h"
    assert eta_p90_s([0] * ETA_BUCKET_COUNT) is None
