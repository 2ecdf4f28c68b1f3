"""Series-arc signature: flat shoulders after current zeros and random broadband bursts.

A series arc in a loose connection goes out at every current zero and re-strikes
only when the voltage across the gap has risen enough, so the current stays near
zero for a while after each zero crossing (the "shoulder"), and each re-strike
radiates broadband noise. This is an advisory signature for detectors, not a
certified AFCI test waveform (UL 1699 / IEC 62606 use real arc generators).

Randomness here is counter-based (a hash of the half-cycle number), so the
signature is a pure function of time and does not depend on block sizes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from collector.sources.simulated.spectra import FloatArray

# Duration of each re-strike burst [cycles of the fundamental].
BURST_CYCLES = 0.15

_U64 = np.uint64


def uniform_hash(counter: NDArray[np.int64], key: int) -> FloatArray:
    """Uniform numbers in [0, 1) from integer counters (splitmix64 finaliser).

    The same (counter, key) always gives the same number; neighbouring counters give
    independent-looking ones.
    """
    with np.errstate(over="ignore"):
        z = counter.astype(_U64) + _U64((key * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        z = z ^ (z >> _U64(31))
    return (z >> _U64(11)).astype(np.float64) * (1.0 / 2.0**53)


def zero_crossing_cycles(fundamental: complex) -> float:
    """Phase [cycles, 0..1) where a current with fundamental phasor ``fundamental`` (sine
    reference) crosses zero going positive."""
    return float((-np.angle(fundamental) / (2.0 * np.pi)) % 1.0)


def shoulder_mask(n_table: int, zero_cycles: float, shoulder_cycles: float) -> NDArray[np.bool_]:
    """Table positions where the arc is out: ``shoulder_cycles`` after each current zero."""
    x = np.arange(n_table) / n_table
    since_zero = np.mod(x - zero_cycles, 0.5)
    return since_zero < shoulder_cycles


def burst_envelope(
    frac: FloatArray,
    whole: NDArray[np.int64],
    zero_cycles: float,
    shoulder_cycles: float,
    probability: float,
    key: int,
) -> FloatArray:
    """Per-sample burst amplitude (0 outside bursts, 0.5..1.5 inside) for an arc.

    A burst follows the re-strike, ``shoulder_cycles`` after each current zero, and
    lasts :data:`BURST_CYCLES`; a half-cycle has one with probability ``probability``
    and a random intensity.
    """
    rel = frac - zero_cycles  # cycles since the positive-going zero, may be negative
    half = np.floor(2.0 * rel)
    half_index = 2 * whole + half.astype(np.int64)
    since_zero = rel - 0.5 * half  # in [0, 0.5)
    in_burst = (since_zero >= shoulder_cycles) & (since_zero < shoulder_cycles + BURST_CYCLES)
    u = uniform_hash(half_index, key)
    fires = u < probability
    intensity = 0.5 + uniform_hash(half_index, key + 1)
    out: FloatArray = np.where(in_burst & fires, intensity, 0.0)
    return out
