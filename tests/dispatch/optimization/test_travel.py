"""The default travel-time provider: straight line x road factor at urban speed."""

from apps.dispatch.optimization.travel import StraightLineProvider, default_provider

ALEXANDERPLATZ = (52.5219, 13.4132)
BRANDENBURG_GATE = (52.5163, 13.3777)


def test_a_leg_is_road_distance_at_urban_speed():
    seconds, metres = StraightLineProvider().leg(ALEXANDERPLATZ, BRANDENBURG_GATE)
    # 2.49 km as the crow flies, x1.3 on the road, at 30 km/h.
    assert 3_150 <= metres <= 3_300
    assert seconds == round(metres / (30 / 3.6))


def test_the_matrix_agrees_with_single_legs_and_is_zero_on_the_diagonal():
    provider = default_provider()
    points = [ALEXANDERPLATZ, BRANDENBURG_GATE, (52.4, 13.3)]
    matrix = provider.matrix(points)
    for i, a in enumerate(points):
        assert matrix.seconds[i][i] == 0
        for j, b in enumerate(points):
            if i != j:
                assert (matrix.seconds[i][j], matrix.metres[i][j]) == provider.leg(a, b)
                assert matrix.reachable(i, j)
