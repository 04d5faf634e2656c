"""Measure GPS noise on real traces; the constants in noise.py come from here.

    .venv/bin/python -m apps.dispatch.simulation.calibration ../shared/data/realworld/gps

Two measurements, both on the go!track phone traces from Aracaju (UCI "GPS
Trajectories": an Android app in cars, a fix every 5-6 s), the closest thing in the
collection to our driver PWA:

* jitter: each moving fix's distance from the smoothed track, where the track at
  that instant is a quadratic in time fitted to the neighbouring fixes within ±12 s,
  leaving the fix itself out (and correcting for the fit's own uncertainty). At 5-6 s
  sampling a shorter window has too few fixes; a longer one mistakes turns for noise.
* time correlation: while a car stands still its true position is fixed, so how far
  two of its fixes L seconds apart lie from each other shows how fast the error
  wanders. The mean square of that distance grows from a fix-to-fix floor to a plateau.

The 1 Hz Munich car trace (barefoot) is reported alongside for its spikes.
Pure functions over lists of fixes; only the readers touch files.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class Fix:
    t: float  # seconds
    lat: float
    lng: float


def local_xy(fixes: Sequence[Fix]) -> list[tuple[float, float, float]]:
    """(t, east m, north m) around the first fix; flat projection, exact enough for one town."""
    first = fixes[0]
    k = math.cos(math.radians(first.lat)) * M_PER_DEG_LAT
    return [(f.t, (f.lng - first.lng) * k, (f.lat - first.lat) * M_PER_DEG_LAT) for f in fixes]


def _solve3(a: list[list[float]], b: list[float]) -> list[float] | None:
    """Gaussian elimination for a 3x3 system; None if singular."""
    m = [[*row, v] for row, v in zip(a, b, strict=True)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-12:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(3):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][3] / m[i][i] for i in range(3)]


def smoothed_track_jitter(fixes: Sequence[Fix], *, window_s: float = 12.0, min_speed_mps: float = 2.0) -> list[float]:
    """Distance of each moving fix from the track smoothed without it, in metres.

    The track is a least-squares quadratic in time through the other fixes within
    ``window_s``; its prediction error adds to the fix's own, so each residual is divided by
    sqrt(1 + h), h being the prediction's variance in units of the noise variance.
    Fixes where the smoothed speed is below ``min_speed_mps`` are skipped: phones hold
    a standing position still, which would understate the jitter.
    """
    pts = local_xy(fixes)
    out: list[float] = []
    for i, (t0, x0, y0) in enumerate(pts):
        near = [(t - t0, x, y) for j, (t, x, y) in enumerate(pts) if j != i and abs(t - t0) <= window_s]
        if len(near) < 4:
            continue
        # Normal equations for value = c0 + c1*dt + c2*dt^2 (dt = 0 at the fix).
        s = [sum(dt**k for dt, _, _ in near) for k in range(5)]
        ata = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]]
        fit_x = _solve3(ata, [sum(x * dt**k for dt, x, _ in near) for k in range(3)])
        fit_y = _solve3(ata, [sum(y * dt**k for dt, _, y in near) for k in range(3)])
        h_col = _solve3(ata, [1.0, 0.0, 0.0])
        if fit_x is None or fit_y is None or h_col is None:
            continue
        if math.hypot(fit_x[1], fit_y[1]) < min_speed_mps:
            continue
        out.append(math.hypot(x0 - fit_x[0], y0 - fit_y[0]) / math.sqrt(1 + h_col[0]))
    return out


def standing_segments(fixes: Sequence[Fix], *, min_s: float = 45, window_s: float = 30,
                      max_speed_mps: float = 0.5) -> list[list[tuple[float, float, float]]]:
    """Runs of fixes during which the car stood still: the running median (±``window_s``)
    moved slower than ``max_speed_mps`` for at least ``min_s``, with no gap over 30 s."""
    pts = local_xy(fixes)
    med = []
    for t0, _, _ in pts:
        near = [(x, y) for t, x, y in pts if abs(t - t0) <= window_s]
        med.append((_median([x for x, _ in near]), _median([y for _, y in near])))
    still = [False] * len(pts)
    for i in range(1, len(pts) - 1):
        dt = pts[i + 1][0] - pts[i - 1][0]
        still[i] = dt > 0 and math.dist(med[i + 1], med[i - 1]) / dt < max_speed_mps
    segments, i = [], 0
    while i < len(pts):
        if not still[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(pts) and still[j + 1] and pts[j + 1][0] - pts[j][0] <= 30:
            j += 1
        if pts[j][0] - pts[i][0] >= min_s and j - i >= 5:
            segments.append(pts[i:j + 1])
        i = j + 1
    return segments


def standing_structure(segments: Sequence[Sequence[tuple[float, float, float]]], *, bin_s: int = 3,
                       max_lag_s: int = 60) -> dict[float, float]:
    """Mean squared distance between two fixes of a standing car, by their time apart (bin centre)."""
    sums: dict[int, list[float]] = defaultdict(list)
    for seg in segments:
        for i, (ti, xi, yi) in enumerate(seg):
            for tj, xj, yj in seg[i + 1:]:
                if tj - ti >= max_lag_s:
                    break
                sums[int((tj - ti) // bin_s)].append((xj - xi) ** 2 + (yj - yi) ** 2)
    return {(b + 0.5) * bin_s: sum(v) / len(v) for b, v in sorted(sums.items()) if b > 0}


def fit_correlation(structure: dict[float, float]) -> tuple[float, float, float]:
    """Fit E|d(L)|^2 = 4 sigma^2 (w + (1 - w)(1 - exp(-L / tau))): white share w, tau, per-axis sigma."""
    best: tuple[float, float, float, float] | None = None
    lags, msd = list(structure), list(structure.values())
    for tau in range(2, 121):
        for w100 in range(100):
            w = w100 / 100
            f = [w + (1 - w) * (1 - math.exp(-lag / tau)) for lag in lags]
            scale = sum(m * g for m, g in zip(msd, f, strict=True)) / sum(g * g for g in f)
            err = sum((m - scale * g) ** 2 for m, g in zip(msd, f, strict=True))
            if best is None or err < best[0]:
                best = (err, w, float(tau), math.sqrt(scale / 4))
    assert best is not None
    return best[1], best[2], best[3]


def _median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# --- readers ----------------------------------------------------------------------


def read_go_track(path: Path) -> dict[str, list[Fix]]:
    """go_track_trackspoints.csv: latitude,longitude,track_id,time (local time, no offset)."""
    tracks: dict[str, set[Fix]] = defaultdict(set)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            t = datetime.fromisoformat(row["time"]).timestamp()
            tracks[row["track_id"]].add(Fix(t, float(row["latitude"]), float(row["longitude"])))
    return {tid: sorted(fixes, key=lambda f: f.t) for tid, fixes in tracks.items()}


def read_time_lat_lon_csv(path: Path) -> list[Fix]:
    with path.open(newline="") as fh:
        return [Fix(datetime.fromisoformat(r["time_iso8601"]).timestamp(), float(r["lat"]), float(r["lon"]))
                for r in csv.DictReader(fh)]


def read_gpx(path: Path) -> list[Fix]:
    pattern = re.compile(r'<trkpt lat="([-\d.]+)" lon="([-\d.]+)">.*?<time>([^<]+)</time>', re.S)
    return [Fix(datetime.fromisoformat(m[3].replace("Z", "+00:00")).timestamp(), float(m[1]), float(m[2]))
            for m in pattern.finditer(path.read_text())]


def phone_tracks(folder: Path) -> list[list[Fix]]:
    """The Aracaju car tracks long enough to smooth and sampled at most every 7 s (median)."""
    out = []
    for fixes in read_go_track(folder / "uci_go_track_trackspoints_aracaju.csv").values():
        gaps = [b.t - a.t for a, b in itertools.pairwise(fixes)]
        if len(fixes) >= 50 and _median(gaps) <= 7:
            out.append(fixes)
    return out


def main(folder: Path) -> None:
    tracks = phone_tracks(folder)
    jitter = [d for fixes in tracks for d in smoothed_track_jitter(fixes)]
    print(f"Aracaju phone traces: {len(tracks)} tracks, {len(jitter)} moving fixes")
    print("  distance from the smoothed track (m): "
          + ", ".join(f"p{round(q * 100)} {quantile(jitter, q):.2f}" for q in (0.5, 0.68, 0.9, 0.95, 0.99)))
    segments = [seg for fixes in tracks for seg in standing_segments(fixes)]
    structure = standing_structure(segments)
    white, tau, sigma = fit_correlation(structure)
    print(f"  standing still: {len(segments)} stops, {sum(s[-1][0] - s[0][0] for s in segments) / 3600:.1f} h; "
          f"rms distance between fixes {math.sqrt(structure[4.5]):.1f} m at 3-6 s apart, "
          f"{math.sqrt(max(structure.values())):.1f} m at most")
    print(f"  fit: {white:.0%} of the variance fix-to-fix, the rest correlated over {tau:.0f} s; "
          f"sigma {sigma:.1f} m per axis")
    munich = read_time_lat_lon_csv(folder / "barefoot_munich_x0001-001_DERIVED.csv")
    spikes = smoothed_track_jitter(munich, window_s=3, min_speed_mps=0)
    print(f"Munich 1 Hz car trace: {len(spikes)} fixes, median {quantile(spikes, 0.5):.2f} m from the track, "
          f"{sum(d > 30 for d in spikes) / len(spikes):.1%} more than 30 m off")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/realworld/gps"))
