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


def test_the_cache_answers_a_repeated_matrix_without_asking_the_provider_again():
    from apps.dispatch.optimization.travel import CachedProvider

    calls = []

    class Counting(StraightLineProvider):
        def matrix(self, points):
            calls.append(len(points))
            return super().matrix(points)

    cached = CachedProvider(Counting())
    points = [ALEXANDERPLATZ, BRANDENBURG_GATE, (52.4, 13.3)]
    first = cached.matrix(points)
    again = cached.matrix(list(reversed(points[:2])))  # a subset in another order: all pairs known
    assert calls == [3]
    assert again.seconds[0][1] == first.seconds[1][0]
    cached.matrix([*points, (52.5, 13.5)])  # a new point: one more provider call
    assert calls == [3, 4]
