"""The supply: nominal voltage and frequency, harmonics, frequency drift, source impedance.

The phase of the fundamental is kept as an accumulated cycle count (integer part
and fraction kept apart), integrated from a frequency that is piecewise linear on a
grid of ~20 ms steps. Every sample's phase is a pure function of its index, so
generating a run in blocks of any size gives bit-identical samples, and the phase
never drifts however long the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from collector.config.system import SystemType
from collector.model import Phase
from collector.sources.simulated.spectra import ComplexArray, FloatArray

IntArray = NDArray[np.int64]

# Random streams of one seed (numpy SeedSequence spawn keys): separate streams keep
# e.g. the frequency walk unchanged when the noise configuration changes.
STREAM_FREQUENCY = 1
STREAM_NOISE = 2
STREAM_ADC_ERRORS = 3
STREAM_ARC = 4


@dataclass(frozen=True, slots=True)
class VoltageHarmonic:
    """A supply voltage harmonic: ``pct`` of nominal at ``angle_deg`` (sine reference)."""

    order: int
    pct: float
    angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if not 2 <= self.order <= 50:
            raise ValueError(f"order: must be between 2 and 50, got {self.order}")
        if not 0 <= self.pct <= 100:
            raise ValueError(f"pct: must be between 0 and 100, got {self.pct}")


# A realistic, slightly flat-topped low-voltage supply: EN 50160 allows 5th 6 %, 7th 5 %,
# 3rd 5 %; typical European feeders carry a few % of 5th from rectifier loads.
DEFAULT_HARMONICS = (
    VoltageHarmonic(3, 1.0, 180.0),
    VoltageHarmonic(5, 2.5, 180.0),
    VoltageHarmonic(7, 1.0, 0.0),
)


@dataclass(frozen=True, slots=True)
class SupplyImpedance:
    """Source impedance seen from the panel, per conductor, at the nominal frequency [Ω].

    Reactances scale with harmonic order (X_h = h·X), resistances do not.
    """

    line_r_ohm: float
    line_x_ohm: float
    neutral_r_ohm: float
    neutral_x_ohm: float

    def __post_init__(self) -> None:
        for name in ("line_r_ohm", "line_x_ohm", "neutral_r_ohm", "neutral_x_ohm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be >= 0, got {value}")

    @classmethod
    def iec_60725(cls) -> SupplyImpedance:
        """IEC TR 60725 reference impedance of 230/400 V supplies: phase 0.24+j0.15 Ω,
        neutral 0.16+j0.10 Ω (single-phase loop 0.4+j0.25 Ω)."""
        return cls(0.24, 0.15, 0.16, 0.10)


@dataclass(frozen=True, slots=True)
class MainsSpec:
    """Supply model parameters.

    Attributes
    ----------
    system : SystemType
    nominal_voltage_v : float
        Phase-to-neutral nominal voltage [V] (split phase: the 120 V legs).
    nominal_frequency_hz : float
    harmonics : tuple[VoltageHarmonic, ...]
        Voltage harmonics of the unloaded supply, % of nominal.
    frequency_drift_hz : float
        Bound of the frequency random walk around nominal [Hz] (0: fixed frequency).
    frequency_walk_hz_per_sqrt_s : float
        Diffusion of the walk [Hz/√s]: typical deviation after t seconds is this·√t.
    noise_v : float
        RMS of white noise on the voltage [V].
    impedance : SupplyImpedance | None
        Source impedance (voltage sags with load) or None for a stiff supply.
    """

    system: SystemType = SystemType.SINGLE_PHASE
    nominal_voltage_v: float = 230.0
    nominal_frequency_hz: float = 50.0
    harmonics: tuple[VoltageHarmonic, ...] = DEFAULT_HARMONICS
    frequency_drift_hz: float = 0.05
    frequency_walk_hz_per_sqrt_s: float = 0.005
    noise_v: float = 0.05
    impedance: SupplyImpedance | None = None

    def __post_init__(self) -> None:
        if not self.nominal_voltage_v > 0:
            raise ValueError(f"nominal_voltage_v: must be > 0, got {self.nominal_voltage_v}")
        if not 10 <= self.nominal_frequency_hz <= 1000:
            raise ValueError(
                "nominal_frequency_hz: must be between 10 and 1000, "
                f"got {self.nominal_frequency_hz}"
            )
        for name in ("frequency_drift_hz", "frequency_walk_hz_per_sqrt_s", "noise_v"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        orders = [h.order for h in self.harmonics]
        if len(set(orders)) != len(orders):
            raise ValueError(f"harmonics: orders must be unique, got {orders}")


def system_phases(system: SystemType) -> tuple[Phase, ...]:
    """Line conductors of a supply, in channel order."""
    if system is SystemType.SINGLE_PHASE:
        return (Phase.A,)
    if system is SystemType.SPLIT_PHASE:
        return (Phase.A, Phase.B)
    return (Phase.A, Phase.B, Phase.C)


def phase_lag_cycles(system: SystemType) -> Mapping[Phase, float]:
    """How far each line voltage lags phase A [cycles]: ABC sequence, or L2 opposite L1."""
    if system is SystemType.SPLIT_PHASE:
        return {Phase.A: 0.0, Phase.B: 0.5}
    return {Phase.A: 0.0, Phase.B: 1.0 / 3.0, Phase.C: 2.0 / 3.0}


def rotate_to_phase(phasors: ComplexArray, lag_cycles: float) -> ComplexArray:
    """Phasors of a waveform delayed by ``lag_cycles`` of the fundamental (order h: h times)."""
    orders = np.arange(phasors.shape[-1])
    out: ComplexArray = phasors * np.exp(-2j * np.pi * orders * lag_cycles)
    return out


def supply_phasors(mains: MainsSpec, h_max: int) -> ComplexArray:
    """Open-circuit supply voltage of phase A, orders 0..h_max [V RMS phasors]."""
    out = np.zeros(h_max + 1, dtype=np.complex128)
    out[1] = mains.nominal_voltage_v
    for h in mains.harmonics:
        if h.order <= h_max:
            out[h.order] = (
                mains.nominal_voltage_v * h.pct / 100.0 * np.exp(1j * math.radians(h.angle_deg))
            )
    return out


def impedance_by_order(
    impedance: SupplyImpedance | None, h_max: int
) -> tuple[ComplexArray, ComplexArray]:
    """Line and neutral impedance for orders 0..h_max [Ω] (zeros for a stiff supply)."""
    orders = np.arange(h_max + 1)
    if impedance is None:
        zero = np.zeros(h_max + 1, dtype=np.complex128)
        return zero, zero.copy()
    line = impedance.line_r_ohm + 1j * impedance.line_x_ohm * orders
    neutral = impedance.neutral_r_ohm + 1j * impedance.neutral_x_ohm * orders
    return line.astype(np.complex128), neutral.astype(np.complex128)


@dataclass(frozen=True, slots=True)
class Excursion:
    """A frequency excursion: from ``start_s`` the frequency moves by ``delta_hz`` at
    ``rocof_hz_per_s``, holds, and returns at the same rate from ``end_s``."""

    start_s: float
    end_s: float
    delta_hz: float
    rocof_hz_per_s: float


def excursion_offset_hz(t_s: FloatArray, excursions: Sequence[Excursion]) -> FloatArray:
    """Sum of the excursion profiles at times ``t_s`` [s] -> frequency offset [Hz]."""
    out = np.zeros_like(t_s)
    for e in excursions:
        if e.delta_hz == 0.0:
            continue
        ramp_s = abs(e.delta_hz) / e.rocof_hz_per_s
        up = np.clip((t_s - e.start_s) / ramp_s, 0.0, 1.0)
        down = np.clip((t_s - e.end_s) / ramp_s, 0.0, 1.0)
        out += e.delta_hz * np.clip(up - down, 0.0, 1.0)
    return out


def _fold(w: FloatArray, bound: float) -> FloatArray:
    """Reflect an unbounded walk into [-bound, bound] (a reflecting-barrier random walk)."""
    if bound <= 0.0:
        return np.zeros_like(w)
    return bound - np.abs(np.mod(w + bound, 4.0 * bound) - 2.0 * bound)


@dataclass(frozen=True, slots=True)
class _Batch:
    freq_hz: FloatArray  # frequency at step boundaries, K + 1 entries
    slope: FloatArray  # (F[k+1] - F[k]) / (2 T): the τ² coefficient of the phase
    c_whole: IntArray  # whole cycles at step boundaries
    c_frac: FloatArray  # fraction of a cycle at step boundaries, in [0, 1)


class Cycles:
    """Phase of the fundamental at a run of samples.

    ``frac`` in [0, 1) is the fraction of the current cycle (0 = positive-going zero
    crossing of phase A's fundamental). ``whole`` (cycles completed since the start)
    and ``freq_hz`` (instantaneous frequency) are computed on first use: most blocks
    need neither.
    """

    __slots__ = ("_cw", "_f", "_g", "_hi", "_lo", "_tau", "_whole", "frac")

    def __init__(
        self,
        tau: FloatArray,
        f: FloatArray,
        g: FloatArray,
        cf: FloatArray,
        cw: IntArray,
        lo: int,
        hi: int,
    ) -> None:
        # per step: c(τ) = cf + τ·(f + g·τ), evaluated for whole steps then trimmed
        c = g[:, None] * tau
        c += f[:, None]
        c *= tau
        c += cf[:, None]
        flat = c.reshape(-1)[lo:hi]
        whole = np.floor(flat)
        flat -= whole
        self.frac: FloatArray = flat
        self._whole = whole
        self._tau, self._f, self._g, self._cw, self._lo, self._hi = tau, f, g, cw, lo, hi

    @property
    def whole(self) -> IntArray:
        steps = np.repeat(self._cw, self._tau.shape[0])[self._lo : self._hi]
        out: IntArray = steps + self._whole.astype(np.int64)
        return out

    @property
    def freq_hz(self) -> FloatArray:
        f = 2.0 * self._g[:, None] * self._tau
        f += self._f[:, None]
        out: FloatArray = f.reshape(-1)[self._lo : self._hi]
        return out


@dataclass
class FrequencyTrack:
    """Frequency and accumulated phase of the supply; deterministic for a seed.

    The frequency is nominal + a reflected random walk (bound ``drift_bound_hz``) +
    scheduled excursions, known at step boundaries ``k·step_s`` and linear between
    them, so the phase is exactly quadratic within a step. Steps are generated in
    batches; only batch start checkpoints are kept for good, so memory does not grow
    with run time beyond a few numbers per batch.
    """

    nominal_hz: float
    drift_bound_hz: float
    walk_hz_per_sqrt_s: float
    fs_hz: float
    seed: int
    excursions: tuple[Excursion, ...] = ()
    step_s_target: float = 0.02
    batch_steps: int = 4096
    _checkpoints: list[tuple[float, int, float]] = field(default_factory=list, repr=False)
    _cache: dict[int, _Batch] = field(default_factory=dict, repr=False)
    _tau: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)

    def __post_init__(self) -> None:
        if not self.fs_hz > 0:
            raise ValueError(f"fs_hz: must be > 0, got {self.fs_hz}")
        self._tau = np.arange(self.step_n) / self.fs_hz
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(STREAM_FREQUENCY,))
        )
        w0 = float(rng.uniform(-1.0, 1.0)) * self.drift_bound_hz
        c0 = float(rng.uniform(0.0, 1.0))  # start at a random point on the wave
        self._checkpoints.append((w0, 0, c0))

    @property
    def step_n(self) -> int:
        """Samples per frequency step."""
        return max(1, round(self.step_s_target * self.fs_hz))

    @property
    def step_s(self) -> float:
        return self.step_n / self.fs_hz

    def _batch(self, b: int) -> _Batch:
        cached = self._cache.get(b)
        if cached is not None:
            return cached
        while len(self._checkpoints) <= b:
            self._make(len(self._checkpoints) - 1)
        batch = self._make(b)
        if len(self._cache) >= 4:  # a few recent batches cover sequential generation
            self._cache.pop(next(iter(self._cache)))
        self._cache[b] = batch
        return batch

    def _make(self, b: int) -> _Batch:
        w0, cw0, cf0 = self._checkpoints[b]
        k_steps = self.batch_steps
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(STREAM_FREQUENCY, b + 1))
        )
        sigma = self.walk_hz_per_sqrt_s * math.sqrt(self.step_s)
        w = np.empty(k_steps + 1)
        w[0] = w0
        np.cumsum(rng.standard_normal(k_steps) * sigma, out=w[1:])
        w[1:] += w0
        t = np.arange(b * k_steps, (b + 1) * k_steps + 1, dtype=np.float64)
        t *= self.step_s
        freq = excursion_offset_hz(t, self.excursions)
        freq += _fold(w, self.drift_bound_hz)
        freq += self.nominal_hz
        c = np.empty(k_steps + 1)
        c[0] = cf0
        np.cumsum(0.5 * (freq[:-1] + freq[1:]) * self.step_s, out=c[1:])
        c[1:] += cf0
        whole = np.floor(c)
        c_frac = c - whole
        c_whole = cw0 + whole.astype(np.int64)
        slope = np.empty(k_steps + 1)
        slope[:-1] = np.diff(freq) / (2.0 * self.step_s)
        slope[-1] = 0.0
        if len(self._checkpoints) == b + 1:
            self._checkpoints.append((float(w[-1]), int(c_whole[-1]), float(c_frac[-1])))
        return _Batch(freq, slope, c_whole, c_frac)

    def _steps(self, k0: int, k1: int) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
        """Frequency, slope, cycle fraction and whole cycles at the start of steps k0..k1-1."""
        parts: list[tuple[FloatArray, FloatArray, FloatArray, IntArray]] = []
        k = k0
        while k < k1:
            b = k // self.batch_steps
            lo = k - b * self.batch_steps
            hi = min(k1 - b * self.batch_steps, self.batch_steps)
            batch = self._batch(b)
            parts.append(
                (
                    batch.freq_hz[lo:hi],
                    batch.slope[lo:hi],
                    batch.c_frac[lo:hi],
                    batch.c_whole[lo:hi],
                )
            )
            k = b * self.batch_steps + hi
        if len(parts) == 1:
            return parts[0]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
        )

    def cycles(self, n0: int, n1: int) -> Cycles:
        """Phase of samples ``n0 .. n1-1`` (sample 0 is the start of the run)."""
        if not 0 <= n0 <= n1:
            raise ValueError(f"n0, n1: need 0 <= n0 <= n1, got {n0}, {n1}")
        step_n = self.step_n
        k0 = n0 // step_n
        k1 = max(k0 + 1, -(-n1 // step_n))
        f, g, cf, cw = self._steps(k0, k1)
        return Cycles(self._tau, f, g, cf, cw, n0 - k0 * step_n, n1 - k0 * step_n)

    def frequency_at(self, t_s: float) -> float:
        """Instantaneous frequency at time ``t_s`` [s] -> [Hz]."""
        n = max(0, math.floor(t_s * self.fs_hz))
        return float(self.cycles(n, n + 1).freq_hz[0])
