"""Positive-going zero crossings of the fundamental, streamed block by block.

The reference voltage is band-limited around the nominal frequency by a
Butterworth band-pass (streamed with its ``zi`` state) so that harmonics,
inter-harmonics, DC offset and noise do not create extra crossings
(IEC 61000-4-30 Ed.3, 5.1, asks for exactly this).  A Schmitt-trigger
condition (the filtered signal must have gone below ``-hysteresis`` since the
last crossing) rejects crossings of a signal that is essentially absent
(interruption).  Each crossing is located to sub-sample precision by fitting
a sinusoid of the nominal frequency through the two samples that bracket it,
which is exact for the sinusoid the band-pass delivers and far better than
linear interpolation at low sample rates (8 samples per cycle).

Positions are in samples since the (re)start of the stream, on the block time
axis: the filter's phase delay at the nominal frequency and the channel's
sampling skew are already accounted for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import signal

# Band edges as a ratio to the nominal frequency; the geometric centre is the
# nominal frequency, where a Butterworth band-pass has zero phase.
_BAND_RATIO = 1.5
# A NaN run longer than this fraction of a nominal cycle is not bridged: the
# crossings it would produce are guessed, not measured.
_MAX_BRIDGED_CYCLES = 0.5
# Crossings are reported only after the band-pass has settled (cycles).
_SETTLE_CYCLES = 6.0


@dataclass(frozen=True, slots=True)
class CrossingDetector:
    """Configuration of a zero-crossing detector for one sample rate.

    Attributes
    ----------
    fs_hz : float
        Sample rate [Hz].
    nominal_frequency_hz : float
        Nominal fundamental frequency [Hz].
    hysteresis : float
        The band-limited signal must go below ``-hysteresis`` [signal units,
        V] between two accepted crossings.
    skew_s : float
        Sampling instant of the reference channel relative to the block time
        axis [s]; added to every crossing.
    sos : NDArray[np.float64]
        Band-pass filter, second-order sections.
    delay_samples : float
        Phase delay of the band-pass at the nominal frequency [samples];
        subtracted from every crossing.
    settle_samples : int
        Crossings before this many samples after a restart are discarded.
    max_bridged_samples : int
        Longest run of missing samples that is bridged by repeating the
        previous cycle.
    """

    fs_hz: float
    nominal_frequency_hz: float
    hysteresis: float
    skew_s: float
    sos: NDArray[np.float64]
    delay_samples: float
    settle_samples: int
    max_bridged_samples: int

    @property
    def period_samples(self) -> int:
        """Nominal period rounded to whole samples (for NaN bridging)."""
        return max(1, round(self.fs_hz / self.nominal_frequency_hz))


@dataclass(frozen=True, slots=True)
class CrossingState:
    """Streaming state of :func:`positive_crossings` between blocks.

    Attributes
    ----------
    zi : NDArray[np.float64]
        Band-pass filter state, shape (n_sections, 2).
    samples_seen : int
        Samples processed since the restart.
    last_y : float
        Last filtered sample (NaN before the first).
    armed : bool
        The filtered signal went below ``-hysteresis`` since the last
        candidate crossing.
    history : NDArray[np.float64]
        Last nominal period of (gap-bridged) input samples.
    invalid_until : int
        Crossings whose first bracketing sample is before this index are
        discarded (settling after a restart or a long gap).
    """

    zi: NDArray[np.float64]
    samples_seen: int
    last_y: float
    armed: bool
    history: NDArray[np.float64]
    invalid_until: int


def crossing_detector(
    fs_hz: float, nominal_frequency_hz: float, hysteresis: float = 0.0, skew_s: float = 0.0
) -> CrossingDetector:
    """Design the band-pass and derive the constants of a detector.

    Parameters
    ----------
    fs_hz : float
        Sample rate [Hz]; must exceed 3.2 times the nominal frequency so that
        the band-pass upper edge stays below Nyquist.
    nominal_frequency_hz : float
        Nominal fundamental frequency [Hz].
    hysteresis : float
        Schmitt-trigger threshold [signal units]; 0 accepts every crossing.
    skew_s : float
        Sampling skew of the reference channel [s].
    """
    if not nominal_frequency_hz > 0:
        raise ValueError(f"nominal_frequency_hz: must be > 0, got {nominal_frequency_hz}")
    upper_hz = nominal_frequency_hz * _BAND_RATIO
    if not fs_hz > 2.0 * upper_hz * 1.05:
        raise ValueError(
            f"fs_hz: must be > {2.1 * upper_hz:g} Hz for a {nominal_frequency_hz:g} Hz "
            f"crossing detector, got {fs_hz}"
        )
    if hysteresis < 0:
        raise ValueError(f"hysteresis: must be >= 0, got {hysteresis}")
    sos = np.asarray(
        signal.butter(
            2,
            [nominal_frequency_hz / _BAND_RATIO, upper_hz],
            btype="bandpass",
            output="sos",
            fs=fs_hz,
        ),
        dtype=np.float64,
    )
    omega = 2.0 * math.pi * nominal_frequency_hz / fs_hz
    _, h = signal.sosfreqz(sos, worN=np.array([omega]))
    delay = float(-np.angle(h[0]) / omega)
    period = fs_hz / nominal_frequency_hz
    return CrossingDetector(
        fs_hz=float(fs_hz),
        nominal_frequency_hz=float(nominal_frequency_hz),
        hysteresis=float(hysteresis),
        skew_s=float(skew_s),
        sos=sos,
        delay_samples=delay,
        settle_samples=math.ceil(_SETTLE_CYCLES * period),
        max_bridged_samples=max(1, int(_MAX_BRIDGED_CYCLES * period)),
    )


def initial_crossing_state(detector: CrossingDetector) -> CrossingState:
    """State for the start of a stream (or after a restart)."""
    return CrossingState(
        zi=np.zeros((detector.sos.shape[0], 2)),
        samples_seen=0,
        last_y=math.nan,
        armed=False,
        history=np.zeros(detector.period_samples),
        invalid_until=detector.settle_samples,
    )


def _bridge_gaps(
    x: NDArray[np.float64], state: CrossingState, detector: CrossingDetector
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]]:
    """Replace NaN by the sample one nominal period earlier.

    Repeating the previous cycle is a good predictor of a mains waveform over a
    short gap and, unlike holding or zeroing, does not kick the band-pass.
    Runs longer than ``max_bridged_samples`` are returned as (starts, ends)
    block indices: crossings around them are guesses and get discarded.
    """
    nan = np.isnan(x)
    none = np.empty(0, dtype=np.intp)
    if not nan.any():
        return x, none, none
    period = detector.period_samples
    ext = np.concatenate([state.history, x])
    # a sequential fill, but only over the missing samples (rare path)
    for k in np.flatnonzero(nan) + period:
        prev = ext[k - period]
        ext[k] = 0.0 if math.isnan(prev) else prev
    edges = np.diff(np.concatenate([[0], nan.astype(np.int8), [0]]))
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1)
    long_runs = (run_ends - run_starts) > detector.max_bridged_samples
    return ext[period:], run_starts[long_runs], run_ends[long_runs]


def positive_crossings(
    x: NDArray[np.float64], state: CrossingState, detector: CrossingDetector
) -> tuple[NDArray[np.float64], CrossingState]:
    """Find positive-going zero crossings of the fundamental in one block.

    Parameters
    ----------
    x : NDArray[np.float64]
        Reference samples of this block [V], shape (n,); NaN = missing.
    state : CrossingState
        State returned for the previous block (or :func:`initial_crossing_state`).
    detector : CrossingDetector
        Filter and constants.

    Returns
    -------
    crossings : NDArray[np.float64]
        Crossing positions [samples since the restart, fractional], ascending.
    state : CrossingState
        State to pass with the next block.

    Notes
    -----
    Chunked processing equals whole-array processing exactly: the filter
    carries ``zi``, the trigger carries ``armed`` and the last sample.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x: must be 1-D, got shape {x.shape}")
    n = x.size
    if n == 0:
        return np.empty(0), state
    filled, bad_starts, bad_ends = _bridge_gaps(x, state, detector)
    # a long gap invalidates crossings from just before it until the filter resettles
    bad_lo = state.samples_seen + bad_starts - 1
    bad_hi = state.samples_seen + bad_ends + detector.settle_samples
    invalid_until = (
        max(state.invalid_until, int(bad_hi[-1])) if bad_hi.size else state.invalid_until
    )
    zi = state.zi.copy()
    y = np.empty(n)
    candidates = np.empty(n, dtype=np.intp)
    found, armed = _filter_and_trigger(
        filled, detector.sos, zi, y, state.last_y, state.armed, detector.hysteresis, candidates
    )
    period = detector.period_samples
    history = filled[-period:] if n >= period else np.concatenate([state.history, filled])[-period:]
    # candidates[k] is the index in yy of a crossing's upper sample, where
    # yy[0] is the previous block's last sample and yy[j] = y[j - 1]
    c = candidates[:found]

    new_state = CrossingState(
        zi=zi,
        samples_seen=state.samples_seen + n,
        last_y=float(y[-1]),
        armed=armed,
        history=history,
        invalid_until=invalid_until,
    )
    if c.size == 0:
        return np.empty(0), new_state

    yy = np.concatenate([[state.last_y], y])
    y0 = yy[c - 1]
    y1 = yy[c]
    # Fit A*sin(w*t + phi) through (0, y0), (1, y1) with w the nominal angular
    # step; the crossing is at t = -phi / w.
    theta = 2.0 * math.pi * detector.nominal_frequency_hz / detector.fs_hz
    phi = np.arctan2(y0 * math.sin(theta), y1 - y0 * math.cos(theta))
    frac = np.clip(-phi / theta, 0.0, 1.0)
    lower = state.samples_seen + (c - 2)  # stream index of the sample below zero
    keep = lower >= state.invalid_until
    for lo, hi in zip(bad_lo, bad_hi, strict=True):
        keep &= (lower < lo) | (lower >= hi)
    pos = lower + frac - detector.delay_samples + detector.skew_s * detector.fs_hz
    return pos[keep], new_state


@numba.njit(cache=True)
def _filter_and_trigger(
    x: NDArray[np.float64],
    sos: NDArray[np.float64],
    zi: NDArray[np.float64],
    y: NDArray[np.float64],
    last_y: float,
    armed: bool,
    hysteresis: float,
    candidates: NDArray[np.intp],
) -> tuple[int, bool]:
    """Band-pass ``x`` into ``y`` and find the accepted upward crossings, in one pass.

    The filter is ``scipy.signal.lfilter`` section by section (transposed
    direct form II, the same operations in the same order), its state ``zi``
    (sections, 2) updated in place.  A crossing is a sample ``>= 0`` after
    one ``< 0``; it is accepted when the signal went below ``-hysteresis``
    since the previous crossing (``armed``).  The index of each accepted
    crossing's upper sample is written to ``candidates`` counting ``last_y``
    as index 0; returns how many there are and whether the trigger is armed
    at the end.
    """
    n_sections = sos.shape[0]
    src = x
    if n_sections == 2:  # the engine's band-pass: its state kept in registers
        _two_sections(x, sos, zi, y)
        src, n_sections = y, 0
    prev = last_y
    found = 0
    for j in range(src.size):
        v = src[j]
        for k in range(n_sections):
            b0, b1, b2 = sos[k, 0], sos[k, 1], sos[k, 2]
            a1, a2 = sos[k, 4], sos[k, 5]
            out = zi[k, 0] + b0 * v
            zi[k, 0] = zi[k, 1] + b1 * v - a1 * out
            zi[k, 1] = b2 * v - a2 * out
            v = out
        y[j] = v
        if v < -hysteresis:
            armed = True
        elif prev < 0.0 and v >= 0.0:
            if armed:
                candidates[found] = j + 1
                found += 1
            armed = False
        prev = v
    return found, armed


@numba.njit(cache=True)
def _two_sections(
    x: NDArray[np.float64], sos: NDArray[np.float64], zi: NDArray[np.float64],
    y: NDArray[np.float64],
) -> None:
    """The section loop of :func:`_filter_and_trigger` for two sections, the same
    operations in the same order, with the state in local variables: kept in
    memory, each sample waited for its store and load (1.8x slower)."""
    b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    z00, z01, z10, z11 = zi[0, 0], zi[0, 1], zi[1, 0], zi[1, 1]
    for j in range(x.size):
        v = x[j]
        out = z00 + b00 * v
        z00 = z01 + b01 * v - a01 * out
        z01 = b02 * v - a02 * out
        v = out
        out = z10 + b10 * v
        z10 = z11 + b11 * v - a11 * out
        z11 = b12 * v - a12 * out
        y[j] = out
    zi[0, 0], zi[0, 1], zi[1, 0], zi[1, 1] = z00, z01, z10, z11


def compile_loops() -> None:
    """Compile this module's numba loop now, or load it from numba's cache: at
    start-up rather than at the first block."""
    for n_sections in (1, 2):
        sos = np.tile([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], (n_sections, 1))
        _filter_and_trigger(
            np.zeros(2), sos, np.zeros((n_sections, 2)), np.empty(2), 0.0, False, 0.0,
            np.empty(2, dtype=np.intp),
        )
