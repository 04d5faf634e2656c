"""The ETA arithmetic on its own: travel, waiting for windows, service times."""

from __future__ import annotations

from apps.eta.engine import StopSpec, late, predict

T0 = 1_800_000_000.0  # any instant: the engine counts seconds


def stop(i: int, *, service_s: int = 0, window_start: float | None = None, window_end: float | None = None,
         arrived_at: float | None = None) -> StopSpec:
    return StopSpec(stop_id=i, order_id=100 + i, lat=52.5, lng=13.4, service_s=service_s,
                    window_start=window_start, window_end=window_end, arrived_at=arrived_at)


def test_each_eta_adds_the_travel_to_the_stop_and_the_service_time_of_the_stops_before_it():
    stops = [stop(1, service_s=120), stop(2, service_s=300), stop(3)]

    etas = predict(now=T0, to_first_s=600, legs=[0, 240, 60], stops=stops)

    assert [e - T0 for e in etas] == [600, 600 + 120 + 240, 600 + 120 + 240 + 300 + 60]


def test_a_driver_early_for_a_window_waits_for_it_and_the_wait_delays_the_stops_after_it():
    opens = T0 + 3600
    stops = [stop(1, service_s=180, window_start=opens), stop(2)]

    etas = predict(now=T0, to_first_s=600, legs=[0, 300], stops=stops)

    assert etas[0] == opens  # at the door when the window opens, not 50 minutes early
    assert etas[1] == opens + 180 + 300


def test_a_window_that_is_already_open_costs_no_wait():
    stops = [stop(1, window_start=T0 - 60)]

    assert predict(now=T0, to_first_s=600, legs=[0], stops=stops) == [T0 + 600]


def test_the_stop_the_driver_is_at_keeps_its_arrival_and_the_rest_follow_its_service():
    stops = [stop(1, service_s=300, arrived_at=T0 - 60), stop(2)]

    etas = predict(now=T0, to_first_s=999, legs=[0, 120], stops=stops)

    assert etas == [T0 - 60, T0 - 60 + 300 + 120]


def test_a_stop_taking_longer_than_its_service_time_pushes_the_rest_from_now():
    stops = [stop(1, service_s=300, arrived_at=T0 - 900), stop(2)]

    etas = predict(now=T0, to_first_s=0, legs=[0, 120], stops=stops)

    assert etas[1] == T0 + 120  # the driver is still there: nothing can start before now


def test_a_stop_reached_after_its_window_closes_is_late_and_one_inside_it_is_not():
    stops = [stop(1, window_end=T0 + 900), stop(2, window_end=T0 + 600), stop(3)]
    etas = [T0 + 900, T0 + 601, T0 + 99_999]

    assert late(etas, stops) == [False, True, False]
    assert late(etas, stops, margin_s=60) == [False, False, False]
