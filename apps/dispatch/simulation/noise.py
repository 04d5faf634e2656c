"""GPS noise for simulated drivers: pure, seeded, calibrated on real phone traces.

A phone's fix is off by an error that wanders slowly (satellite geometry, multipath)
plus a little fix-to-fix jitter, and the error is larger between tall buildings than
under open sky. So, per axis, in metres:

    offset = wander + jitter
    wander(t) = rho * wander(t - dt) + sqrt(1 - rho^2) * s * sqrt(1 - WHITE_SHARE) * N(0, 1),
                rho = exp(-dt / CORRELATION_S)
    jitter    = s * sqrt(WHITE_SHARE) * N(0, 1)

where s is OPEN_SKY_SIGMA_M or CANYON_SIGMA_M, and the environment switches between the
two as a Markov chain that spends CANYON_SHARE of the time in the canyon. The noise
evolves in device time (the pings' ``at``), so its wobble between two pings is what
the server sees.

Spikes (a fix hundreds of metres off) are real but left out: the server hides them,
and the demo fleet should move cleanly. Each step is also capped, so noise never adds
more than MAX_NOISE_SPEED_MPS to the speed two pings imply.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# Measured with `python -m apps.dispatch.simulation.calibration ../shared/data/realworld/gps`
# on the go!track phone traces from Aracaju (UCI "GPS Trajectories"; Android phones in
# cars, a fix every 5-6 s; see PROVENANCE.md there): 6,099 moving fixes of 74 tracks lie
# this far from the smoothed track (leave-one-out local quadratic over ±12 s):
MEASURED_MEDIAN_M = 3.09
MEASURED_P68_M = 4.78
MEASURED_P95_M = 11.16
MEASURED_P99_M = 17.03
# The distribution has a heavier tail than one Gaussian gives (p95/median 3.6, not 2.1):
# some fixes scatter like under open sky, some like in a street canyon. These three
# were fitted by running this model at 3 s pings and matching the median, p68, p90 and
# p95 above; it gives 3.1, 4.7, 8.8 and 10.8 m (p99 14.4 m: the real tail is longer).
OPEN_SKY_SIGMA_M = 1.65
CANYON_SIGMA_M = 5.5
CANYON_SHARE = 0.40
# From the same traces while cars stood still (122 stops, 4.2 h): two fixes 3-6 s apart
# differ by 2.2 m rms, rising to 4.2 m by a minute. Fitted: 8% of the error variance is
# fix-to-fix, the rest decorrelates over 20 s.
WHITE_SHARE = 0.08
CORRELATION_S = 20.0
# Not measurable from these traces (they do not say where the buildings are): how long a
# driver stays in one environment. About a minute, a few blocks at city speed.
CANYON_DWELL_S = 60.0
# Left out: spikes. The 1 Hz Munich car trace (barefoot) has 0.4% of its fixes more than
# 30 m off the track, one implying 470 m/s.
#
# The server stores but does not show a ping implying more than 70 m/s from the last
# shown one (LOCATION_MAX_SPEED_MPS, apps/tracking/pings.py). Noise is kept to a fraction
# of that, leaving the rest to the vehicle's own motion (movement.MAX_MAP_SPEED_MPS). At
# 3 s pings the cap shortens 0.1% of steps; the p99 noise speed is 3.2 m/s.
SERVER_FLAG_SPEED_MPS = 70.0
MAX_NOISE_SPEED_MPS = 4.0
# Phones report the radius of 68% confidence: 1.51 sigma for a circular Gaussian.
ACCURACY_PER_SIGMA = 1.51
MIN_ACCURACY_M = 3

M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class Offset:
    east_m: float
    north_m: float
    accuracy_m: int

    @property
    def distance_m(self) -> float:
        return math.hypot(self.east_m, self.north_m)


@dataclass
class GpsNoise:
    """One device's error over time. Same seed and same times, same offsets."""

    rng: random.Random
    canyon: bool | None = None
    wander: tuple[float, float] = (0.0, 0.0)
    last_t: float | None = None
    last: tuple[float, float] = field(default=(0.0, 0.0))

    @property
    def sigma_m(self) -> float:
        return CANYON_SIGMA_M if self.canyon else OPEN_SKY_SIGMA_M

    def at(self, t: float) -> Offset:
        """The error of a fix taken at device time ``t`` (seconds, non-decreasing)."""
        gauss = self.rng.gauss
        if self.last_t is None or self.canyon is None:
            # Start in the steady state, as if the device had been on for a while.
            self.canyon = self.rng.random() < CANYON_SHARE
            spread = self.sigma_m * math.sqrt(1 - WHITE_SHARE)
            self.wander = (gauss(0, spread), gauss(0, spread))
            self.last = self._observe()
            self.last_t = t
            return self._offset()
        dt = t - self.last_t
        if dt <= 0:
            return self._offset()
        self._maybe_switch(dt)
        rho = math.exp(-dt / CORRELATION_S)
        spread = math.sqrt(1 - rho * rho) * self.sigma_m * math.sqrt(1 - WHITE_SHARE)
        self.wander = (rho * self.wander[0] + gauss(0, spread), rho * self.wander[1] + gauss(0, spread))
        east, north = self._observe()
        step = math.hypot(east - self.last[0], north - self.last[1])
        cap = MAX_NOISE_SPEED_MPS * dt
        if step > cap:
            # A jump the device would not make: move as far as allowed towards it.
            f = cap / step
            east, north = self.last[0] + (east - self.last[0]) * f, self.last[1] + (north - self.last[1]) * f
        self.last, self.last_t = (east, north), t
        return self._offset()

    def _maybe_switch(self, dt: float) -> None:
        # Leave the canyon after CANYON_DWELL_S on average, and open sky after the dwell
        # that makes the canyon's share of time CANYON_SHARE.
        dwell = CANYON_DWELL_S if self.canyon else CANYON_DWELL_S * (1 - CANYON_SHARE) / CANYON_SHARE
        if self.rng.random() < 1 - math.exp(-dt / dwell):
            self.canyon = not self.canyon

    def _observe(self) -> tuple[float, float]:
        jitter = self.sigma_m * math.sqrt(WHITE_SHARE)
        return self.wander[0] + self.rng.gauss(0, jitter), self.wander[1] + self.rng.gauss(0, jitter)

    def _offset(self) -> Offset:
        reported = self.sigma_m * ACCURACY_PER_SIGMA * self.rng.uniform(0.8, 1.25)
        return Offset(east_m=self.last[0], north_m=self.last[1], accuracy_m=max(MIN_ACCURACY_M, round(reported)))


def displace(lat: float, lng: float, offset: Offset) -> tuple[float, float]:
    """The position ``offset`` metres east and north of (lat, lng)."""
    return (lat + offset.north_m / M_PER_DEG_LAT,
            lng + offset.east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat))))
