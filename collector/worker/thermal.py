"""I²t thermal overload model of a circuit against its breaker rating.

A miniature circuit breaker's overload release is a bimetal: a first-order thermal
element heated by i² and cooled towards ambient. The worker runs the same physics
on the stored RMS currents (a "thermal replica", the model protection relays use,
IEC 60255-149) so it can warn and shed a load *before* the breaker opens::

    dθ/dt = ((I / In)² - θ) / τ          θ: heat [per unit of In²]
    trip when θ >= k²                    k: pickup [× In]

Steady state is θ = (I/In)², so a current below ``k·In`` never trips however long it
flows, and the heat a short pulse adds is about ``(I/In)²·Δt/τ``: a 6× motor inrush
for 0.2 s adds 36·0.2/τ, which with τ = 240 s is 0.03 per unit — nothing.

Defaults (``ThermalParams``) against IEC 60898-1 (Table 7, time-current operating
characteristic of B/C/D breakers, reference temperature 30 °C):

* test a: 1.13 In from cold must NOT trip within the conventional time (1 h for
  In ≤ 63 A, 2 h above); test b: 1.45 In right after test a must trip within it;
* test c: 2.55 In from cold trips after more than 1 s and within 60 s (In ≤ 32 A) or
  120 s (In > 32 A);
* tests d/e: the magnetic release (B: 3-5 In, C: 5-10 In, D: 10-20 In) acts within
  0.1 s — far faster than anything computed from ~3 s records.

With k = 1.10 and τ = 240 s the model carries In forever (θ = 1 < 1.21), trips at a
sustained 1.25 In after 357 s from cold and 112 s from operating temperature —
well inside the conventional hour in which a breaker at that current may open —
and at 2.55 In after 49 s, before the latest a compliant ≤ 32 A breaker trips.
Above about 2.5 In a breaker may legitimately open in 1 s: that region belongs to
the breaker and to the collector's instantaneous overcurrent events, not to this
model (docs/alerting.md).

The state update is exact for a current that is constant over each step (a record's
RMS is exactly the root of the mean of i² over its interval)::

    θ[n] = x²[n] + (θ[n-1] - x²[n]) · exp(-Δt[n] / τ)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal

from collector.model import NS_PER_S, Metrics

CURRENT_FIELD = "current_rms_a"

# IEC 60898-1 Table 7: conventional time [s] by rated current.
_CONVENTIONAL_TIME_SMALL_S = 3600.0  # In <= 63 A
_CONVENTIONAL_TIME_LARGE_S = 7200.0  # In > 63 A


class BreakerCurve(StrEnum):
    """Instantaneous tripping type of IEC 60898-1 (magnetic release band, × In)."""

    B = "B"
    C = "C"
    D = "D"


_MAGNETIC_BAND = {BreakerCurve.B: (3.0, 5.0), BreakerCurve.C: (5.0, 10.0),
                  BreakerCurve.D: (10.0, 20.0)}


@dataclass(frozen=True, slots=True)
class BreakerTestPoint:
    """One IEC 60898-1 Table 7 test: current [× In], start state, allowed trip times [s].

    ``min_trip_s``: the breaker must NOT trip before this (None: no lower bound);
    ``max_trip_s``: it must trip by then (None: it need not trip at all).
    """

    test: str
    multiple: float
    from_cold: bool
    min_trip_s: float | None
    max_trip_s: float | None


def conventional_time_s(rating_a: float) -> float:
    """IEC 60898-1 conventional time [s] for a breaker of rated current ``rating_a`` [A]."""
    if not rating_a > 0:
        raise ValueError(f"rating_a: must be > 0 A, got {rating_a}")
    return _CONVENTIONAL_TIME_SMALL_S if rating_a <= 63.0 else _CONVENTIONAL_TIME_LARGE_S


def iec60898_test_points(rating_a: float, curve: BreakerCurve) -> tuple[BreakerTestPoint, ...]:
    """The time-current tests a-e of IEC 60898-1 Table 7 for one breaker.

    Parameters
    ----------
    rating_a : float
        Rated current In [A].
    curve : BreakerCurve
        Instantaneous tripping type (B, C or D).

    Returns
    -------
    tuple[BreakerTestPoint, ...]
        Tests a (1.13 In), b (1.45 In, hot), c (2.55 In), d and e (magnetic band).
    """
    t_conv = conventional_time_s(rating_a)
    t_c_max = 60.0 if rating_a <= 32.0 else 120.0
    low, high = _MAGNETIC_BAND[curve]
    return (
        BreakerTestPoint("a", 1.13, True, t_conv, None),
        BreakerTestPoint("b", 1.45, False, None, t_conv),
        BreakerTestPoint("c", 2.55, True, 1.0, t_c_max),
        BreakerTestPoint("d", low, True, 0.1, None),
        BreakerTestPoint("e", high, True, None, 0.1),
    )


@dataclass(frozen=True, slots=True)
class ThermalParams:
    """Parameters of one circuit's thermal replica.

    Attributes
    ----------
    rating_a : float
        Breaker rated current In [A].
    time_constant_s : float
        Thermal time constant τ [s].
    pickup : float
        Steady current that just reaches the trip heat [× In]; must be > 1 so the
        rated current is carried indefinitely.
    approach_level : float
        Heat, as a fraction of the trip heat, at which the circuit counts as
        "approaching its limit" (warning alert, load shedding) [1].
    """

    rating_a: float
    time_constant_s: float = 240.0
    pickup: float = 1.10
    approach_level: float = 0.9

    def __post_init__(self) -> None:
        if not self.rating_a > 0:
            raise ValueError(f"rating_a: must be > 0 A, got {self.rating_a}")
        if not self.time_constant_s > 0:
            raise ValueError(f"time_constant_s: must be > 0 s, got {self.time_constant_s}")
        if not 1.0 < self.pickup <= 2.0:
            raise ValueError(
                f"pickup: must be in (1, 2] × In (the rated current must be carried "
                f"forever), got {self.pickup}"
            )
        steady_level = 1.0 / self.pickup**2
        if not steady_level < self.approach_level < 1.0:
            raise ValueError(
                f"approach_level: must be in ({steady_level:.3f}, 1): above the level of a "
                f"steady rated current and below the trip, got {self.approach_level}"
            )

    @property
    def trip_heat_pu(self) -> float:
        """Heat at which the model trips [per unit of In²]."""
        return self.pickup**2


def thermal_heat_pu(
    current_a: ArrayLike,
    dt_s: ArrayLike,
    params: ThermalParams,
    heat0_pu: float = 0.0,
) -> tuple[NDArray[np.float64], float]:
    """Heat after each step of piecewise-constant RMS current (streaming).

    Parameters
    ----------
    current_a : ArrayLike
        RMS current of each step [A], shape (N,).
    dt_s : ArrayLike
        Duration of each step [s], scalar or shape (N,), each >= 0.
    params : ThermalParams
        Rating and time constant.
    heat0_pu : float
        Heat before the first step [per unit of In²]; 0 = cold.

    Returns
    -------
    heat_pu : NDArray[np.float64]
        Heat at the end of each step [per unit of In²], shape (N,).
    heat_end_pu : float
        Heat after the last step: the state to pass as ``heat0_pu`` for the next
        chunk (chunked processing equals whole-array processing).
    """
    x2 = (np.asarray(current_a, dtype=np.float64) / params.rating_a) ** 2
    if x2.ndim != 1:
        raise ValueError(f"current_a: expected a 1-D array, got shape {x2.shape}")
    dt = np.broadcast_to(np.asarray(dt_s, dtype=np.float64), x2.shape)
    if np.any(~np.isfinite(x2)):
        raise ValueError("current_a: must be finite (drop missing records before the model)")
    if np.any(~(dt >= 0)):
        raise ValueError(f"dt_s: every step must be >= 0 s, got min {float(np.min(dt))}")
    if not (math.isfinite(heat0_pu) and heat0_pu >= 0):
        raise ValueError(f"heat0_pu: must be finite and >= 0, got {heat0_pu}")
    if x2.size == 0:
        return np.empty(0), float(heat0_pu)
    decay = np.exp(-dt / params.time_constant_s)
    if np.all(dt == dt[0]):
        # Uniform steps: the recursion is a one-pole IIR filter, run in C.
        a = float(decay[0])
        heat, _ = signal.lfilter([1.0 - a], [1.0, -a], x2, zi=[a * heat0_pu])
        heat = np.asarray(heat, dtype=np.float64)
    else:
        heat = np.empty_like(x2)
        h = float(heat0_pu)
        for k in range(x2.size):
            h = x2[k] + (h - x2[k]) * decay[k]
            heat[k] = h
    return heat, float(heat[-1])


def trip_time_s(current_ratio: float, params: ThermalParams, heat0_pu: float = 0.0) -> float:
    """Time for a constant current to reach the trip heat, closed form [s].

    Parameters
    ----------
    current_ratio : float
        Constant current I / In [1].
    params : ThermalParams
    heat0_pu : float
        Heat at the start [per unit of In²].

    Returns
    -------
    float
        τ·ln((x² - θ0) / (x² - k²)); 0 when already at the trip heat, ``inf`` when the
        current never gets there.
    """
    x2 = current_ratio**2
    trip = params.trip_heat_pu
    if heat0_pu >= trip:
        return 0.0
    if x2 <= trip:
        return math.inf
    return params.time_constant_s * math.log((x2 - heat0_pu) / (x2 - trip))


class ThermalStatus(StrEnum):
    NORMAL = "normal"
    APPROACHING = "approaching"  # heat >= approach_level of the trip heat
    TRIPPED = "tripped"  # heat >= trip heat: the breaker's release is close


@dataclass(frozen=True, slots=True)
class ThermalReading:
    """Heat of one circuit phase after a record.

    Attributes
    ----------
    circuit, phase : str, str | None
    time_ns : int
        End of the record's interval [ns since epoch].
    current_a : float
        RMS current of the record [A].
    heat_pu : float
        Heat [per unit of In²].
    level : float
        Heat as a fraction of the trip heat [1] (1.0 = trip).
    status : ThermalStatus
    rating_a : float
        Breaker rating the heat is relative to [A].
    """

    circuit: str
    phase: str | None
    time_ns: int
    current_a: float
    heat_pu: float
    level: float
    status: ThermalStatus
    rating_a: float

    @property
    def heating(self) -> bool:
        """True while the heat still rises (the current is above its steady equivalent)."""
        return (self.current_a / self.rating_a) ** 2 > self.heat_pu


def interval_duration_s(interval: str, nominal_frequency_hz: float = 50.0) -> float:
    """Nominal length [s] of an aggregation interval name (``basic``, ``150c``, ...)."""
    if interval == "basic":
        cycles = 10 if nominal_frequency_hz < 55 else 12
        return cycles / nominal_frequency_hz
    if interval.endswith("c") and interval[:-1].isdigit():
        return int(interval[:-1]) / nominal_frequency_hz
    fixed = {"10min": 600.0, "2h": 7200.0}
    if interval in fixed:
        return fixed[interval]
    raise ValueError(f"interval: expected basic, <n>c, 10min or 2h, got {interval!r}")


@dataclass(frozen=True, slots=True)
class _PhaseState:
    heat_pu: float
    end_ns: int  # end of the last record applied
    last_x2: float


class ThermalMonitor:
    """Thermal replicas of every configured circuit phase, fed with Metrics records.

    Only records of ``intervals`` are used (one aggregation, so nothing is counted
    twice). A record heats for its nominal duration from its start time; a gap
    before the next record is filled with the last current for at most
    ``max_hold_s`` (a short loss of data must not look like cooling) and with zero
    current beyond that (after a long outage nothing is known).
    """

    def __init__(
        self,
        params: Mapping[str, ThermalParams],
        *,
        intervals: frozenset[str] = frozenset({"150c", "180c"}),
        nominal_frequency_hz: float = 50.0,
        max_hold_s: float = 60.0,
    ) -> None:
        if max_hold_s < 0:
            raise ValueError(f"max_hold_s: must be >= 0 s, got {max_hold_s}")
        self._params = dict(params)
        self._intervals = intervals
        self._f_hz = nominal_frequency_hz
        self._max_hold_ns = round(max_hold_s * NS_PER_S)
        self._state: dict[tuple[str, str | None], _PhaseState] = {}

    @property
    def circuits(self) -> tuple[str, ...]:
        return tuple(self._params)

    def params(self, circuit: str) -> ThermalParams:
        return self._params[circuit]

    def update(self, metrics: Iterable[Metrics]) -> list[ThermalReading]:
        """Apply new records (any order); returns one reading per record applied."""
        chosen = sorted(
            (m for m in metrics
             if m.interval in self._intervals and m.channel in self._params
             and isinstance(m.fields.get(CURRENT_FIELD), int | float)
             and not isinstance(m.fields.get(CURRENT_FIELD), bool)),
            key=lambda m: m.time_ns,
        )
        out: list[ThermalReading] = []
        for m in chosen:
            reading = self._apply(m)
            if reading is not None:
                out.append(reading)
        return out

    def _apply(self, m: Metrics) -> ThermalReading | None:
        p = self._params[m.channel]
        current = float(m.fields[CURRENT_FIELD])  # type: ignore[arg-type]
        if not math.isfinite(current) or current < 0:
            return None  # sensor health reports it; the thermal state must not be poisoned
        key = (m.channel, m.phase)
        dur_ns = round(interval_duration_s(m.interval, self._f_hz) * NS_PER_S)
        prev = self._state.get(key)
        x2 = (current / p.rating_a) ** 2
        currents: list[float] = []
        steps: list[float] = []
        heat0 = 0.0
        if prev is not None:
            if m.time_ns < prev.end_ns - dur_ns // 2:
                return None  # already applied (a re-read or out-of-order record)
            heat0 = prev.heat_pu
            gap_ns = max(m.time_ns - prev.end_ns, 0)
            hold_ns = min(gap_ns, self._max_hold_ns)
            prev_current = math.sqrt(prev.last_x2) * p.rating_a
            if hold_ns > 0:
                currents.append(prev_current)
                steps.append(hold_ns / NS_PER_S)
            if gap_ns > hold_ns:
                currents.append(0.0)
                steps.append((gap_ns - hold_ns) / NS_PER_S)
        currents.append(current)
        steps.append(dur_ns / NS_PER_S)
        _, heat = thermal_heat_pu(np.asarray(currents), np.asarray(steps), p, heat0)
        end_ns = max(m.time_ns, prev.end_ns if prev else m.time_ns) + dur_ns
        self._state[key] = _PhaseState(heat, end_ns, x2)
        level = heat / p.trip_heat_pu
        if level >= 1.0:
            status = ThermalStatus.TRIPPED
        elif level >= p.approach_level:
            status = ThermalStatus.APPROACHING
        else:
            status = ThermalStatus.NORMAL
        return ThermalReading(m.channel, m.phase, end_ns, current, heat, level, status,
                              p.rating_a)

    def level(self, circuit: str) -> float:
        """Highest heat level over the circuit's phases [fraction of trip heat]; 0 if unknown."""
        p = self._params.get(circuit)
        if p is None:
            return 0.0
        return max((s.heat_pu / p.trip_heat_pu for (c, _), s in self._state.items()
                    if c == circuit), default=0.0)

    def heating(self, circuit: str) -> bool:
        """True when any phase of the circuit still draws more than its heat's steady current."""
        return any(s.last_x2 > s.heat_pu for (c, _), s in self._state.items() if c == circuit)

    def snapshot(self) -> dict[str, float]:
        """Heat level of every circuit seen so far (for status output)."""
        return {c: self.level(c) for c in {c for c, _ in self._state}}
