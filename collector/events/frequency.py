"""Power frequency from interpolated zero crossings, and frequency-deviation events.

IEC 61000-4-30 §5.1: the frequency reading is the number of integral cycles counted
within the 10-s interval (aligned to the clock) divided by the cumulative duration
of those cycles. Zero crossings are found on a low-pass filtered copy of the
reference voltage (harmonics can add crossings near zero) and interpolated linearly
between samples; the filter delays every crossing equally, which does not change a
frequency measured between crossings.

Limits (EN 50160 §4.2.1, interconnected systems): 50 Hz ± 1 % during 99.5 % of a year
on 10-s mean values, and 50 Hz + 4 % / - 6 % (47-52 Hz) at all times. The first is the
default band on 10-s values; the second is the default "fast" band on 1-s values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import signal

from collector.events.persistence import RunConfirmed, RunEnded, SustainedRun
from collector.model import NS_PER_S, Event, EventType, Severity, as_float_array

try:  # the kernel behind scipy.signal.sosfilt, without its ~40 us of argument checks
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_in_place
except ImportError:  # pragma: no cover - a scipy that moved it: use the public function
    _sosfilt_in_place = None

# Crossings of the first cycles are discarded: the low-pass filter starts from rest.
_WARMUP_CYCLES = 3.0
_LOWPASS_ORDER = 4
_LOWPASS_CUTOFF_X_NOMINAL = 1.4  # passes 50 Hz +/- 10 % flat, damps the 3rd harmonic ~30x


def default_band_hz(f_nominal_hz: float) -> tuple[float, float]:
    """EN 50160 band for 10-s values: nominal ± 1 % [Hz]."""
    return (0.99 * f_nominal_hz, 1.01 * f_nominal_hz)


def default_fast_band_hz(f_nominal_hz: float) -> tuple[float, float]:
    """EN 50160 band that must hold at all times: nominal - 6 % / + 4 % [Hz]."""
    return (0.94 * f_nominal_hz, 1.04 * f_nominal_hz)


@dataclass(frozen=True, slots=True, eq=False)
class ZeroCrossingState:
    """Carry-over of :func:`positive_zero_crossings_ns`.

    Attributes
    ----------
    zi : NDArray[np.float64] | None
        Low-pass filter state (scipy ``sosfilt`` layout); None when not filtering.
    last_y : float
        Last filtered sample of the previous chunk.
    armed : bool
        True once the signal went below ``-arm_level`` since the last crossing.
    samples_seen : int
        Samples processed since the stream started.
    sos : NDArray[np.float64] | None
        The low-pass filter designed for ``design`` (kept so that it is designed once
        per stream, not once per block).
    design : tuple[float, float]
        ``(fs_hz, f_nominal_hz)`` the filter was designed for.
    """

    zi: NDArray[np.float64] | None
    last_y: float
    armed: bool
    samples_seen: int
    sos: NDArray[np.float64] | None = None
    design: tuple[float, float] = (0.0, 0.0)


def primed(fs_hz: float, f_nominal_hz: float) -> ZeroCrossingState:
    """The state that starts a stream with the low-pass filter designed already
    (designing it takes about a millisecond: once per stream, or once per source)."""
    design = (float(fs_hz), float(f_nominal_hz))
    return ZeroCrossingState(None, float("nan"), False, 0, _lowpass_sos(*design), design)


def _lowpass_sos(fs_hz: float, f_nominal_hz: float) -> NDArray[np.float64] | None:
    cutoff = _LOWPASS_CUTOFF_X_NOMINAL * f_nominal_hz
    if cutoff >= 0.45 * fs_hz:
        return None  # too few samples per cycle for a useful filter
    sos: NDArray[np.float64] = signal.butter(
        _LOWPASS_ORDER, cutoff, btype="lowpass", fs=fs_hz, output="sos"
    )
    return sos


def _sosfilt(
    sos: NDArray[np.float64], x: NDArray[np.float64], zi: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``scipy.signal.sosfilt(sos, x, zi=zi)`` for a 1-D float64 ``x``: same kernel, same result."""
    if _sosfilt_in_place is None:  # pragma: no cover
        y, zf = signal.sosfilt(sos, x, zi=zi)
        return y, zf
    y_2d = np.array(x, dtype=np.float64)[None, :]  # filtered in place
    z_3d = np.array(zi, dtype=np.float64).reshape(1, sos.shape[0], 2)
    _sosfilt_in_place(sos, y_2d, z_3d)
    return y_2d[0], z_3d[0]


# no filter sections: _filter_and_scan then scans the samples as they are
_NO_SECTIONS = np.empty((0, 6))


def positive_zero_crossings_ns(
    x_v: NDArray[np.float64],
    t0_ns: int,
    fs_hz: float,
    f_nominal_hz: float,
    arm_level_v: float,
    state: ZeroCrossingState | None = None,
    *,
    has_nan: bool | None = None,
) -> tuple[NDArray[np.int64], ZeroCrossingState]:
    """Times of positive-going zero crossings of the fundamental, streaming.

    Parameters
    ----------
    x_v : NDArray[np.float64]
        One channel's samples, shape (n,) [V]. NaN samples are treated as 0 and
        disarm the detector.
    t0_ns : int
        Time of ``x_v[0]`` [ns since epoch].
    fs_hz : float
        Sample rate [Hz].
    f_nominal_hz : float
        Nominal frequency, sets the low-pass cutoff [Hz].
    arm_level_v : float
        A crossing counts only after the filtered signal went below
        ``-arm_level_v`` [V]: noise around zero during an interruption is ignored.
    state : ZeroCrossingState | None
        From the previous call on the directly preceding samples; None to start.
    has_nan : bool | None
        Whether ``x_v`` has a NaN, when the caller knows already; None to look.

    Returns
    -------
    crossings_ns : NDArray[np.int64]
        Crossing times [ns since epoch], delayed by the (constant) filter delay.
    state : ZeroCrossingState
    """
    x = as_float_array(x_v)
    if x.ndim != 1:
        raise ValueError(f"x_v: expected shape (n,), got {x.shape}")
    if not fs_hz > 0:
        raise ValueError(f"fs_hz: must be > 0, got {fs_hz}")
    design = (float(fs_hz), float(f_nominal_hz))
    if state is not None and state.design == design:
        sos = state.sos
    else:
        sos = _lowpass_sos(fs_hz, f_nominal_hz)
    if has_nan is None:
        has_nan = bool(np.isnan(x).any())
    any_nan = has_nan
    nan = np.isnan(x) if has_nan else np.zeros(x.shape, dtype=bool)
    if any_nan:
        x = np.where(nan, 0.0, x)
    if state is None or (state.zi is None and state.samples_seen == 0 and sos is not None):
        # a new stream (possibly with the filter designed already: see ``primed``)
        zi = None if sos is None else signal.sosfilt_zi(sos) * (x[0] if x.size else 0.0)
        state = ZeroCrossingState(zi, float("nan"), False, 0)
    warmup = int(_WARMUP_CYCLES * fs_hz / f_nominal_hz)
    if not any_nan and x.size:
        # the usual case: filter (when there is one) and scan in one compiled pass
        sections = sos if sos is not None and state.zi is not None else _NO_SECTIONS
        filtered = sections.shape[0] > 0
        zi = np.array(state.zi, dtype=np.float64) if filtered else np.empty((0, 2))
        out = np.empty(x.size // 2 + 1, dtype=np.int64)
        count, armed, last_y = _filter_and_scan(
            sections, zi, x, state.last_y, bool(state.armed),
            -float(arm_level_v), state.samples_seen, warmup, t0_ns, float(fs_hz), out,
        )
        new_state = ZeroCrossingState(
            zi if filtered else None, last_y, armed, state.samples_seen + x.size, sos, design
        )
        return out[:count], new_state
    if sos is not None and state.zi is not None:
        y, zi = _sosfilt(sos, x, state.zi)
    else:
        y, zi = x, None
    yy = np.concatenate([[state.last_y], y])
    neg = yy < -arm_level_v
    if any_nan:
        neg &= ~np.concatenate([[False], nan])
    cand = np.flatnonzero((yy[:-1] <= 0) & (yy[1:] > 0))  # crossing between cand and cand+1
    neg_idx = np.flatnonzero(neg)
    # A crossing counts when a negative excursion came since the previous candidate
    # crossing (or, for the first, since the last call: ``state.armed``); a counted or
    # an uncounted candidate alike leaves the detector disarmed. ``yy[cand]`` is finite:
    # NaN input is zeroed and the NaN ``last_y`` of a new stream is never ``<= 0``.
    prev = np.concatenate([[-1], cand[:-1]])
    armed_at = np.searchsorted(neg_idx, cand, side="right") > np.searchsorted(
        neg_idx, prev + 1, side="left"
    )
    if cand.size:
        armed_at[0] |= state.armed
    j = cand[armed_at]
    frac = yy[j] / (yy[j] - yy[j + 1])
    pos = (j - 1) + frac  # yy index j is sample j-1 of this chunk
    pos = pos[state.samples_seen + pos >= warmup]
    times = t0_ns + np.round(pos * NS_PER_S / fs_hz).astype(np.int64)
    last_cross = int(cand[-1]) if cand.size else -1
    armed = state.armed if not cand.size else False
    if not armed and np.searchsorted(neg_idx, last_cross + 1) < neg_idx.size:
        armed = True
    new_state = ZeroCrossingState(
        zi, float(y[-1]) if y.size else state.last_y, armed, state.samples_seen + x.size,
        sos, design,
    )
    return times, new_state


def compile_loops() -> None:
    """Compile this module's numba loops now, or load them from numba's cache: at
    start-up rather than at the first block (a fraction of a second)."""
    read_only = np.zeros(2)
    read_only.setflags(write=False)  # unfiltered samples of a replayed recording
    for x in (np.zeros(2), read_only):
        for n_sections in (1, 2):
            _filter_and_scan(np.tile([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], (n_sections, 1)),
                             np.zeros((n_sections, 2)), x, 0.0, False, -1.0, 0, 0, 0, 1.0,
                             np.empty(2, dtype=np.int64))
    one = np.zeros(1, dtype=np.int64)
    _cycles_per_interval(one, 1, 1.0, -1, False, one.copy(), one.copy(), one.copy())


@numba.njit(cache=True)
def _filter_and_scan(
    sos: NDArray[np.float64],
    zi: NDArray[np.float64],
    x: NDArray[np.float64],
    last_y: float,
    armed: bool,
    level: float,
    samples_seen: int,
    warmup: int,
    t0_ns: int,
    fs_hz: float,
    out: NDArray[np.int64],
) -> tuple[int, bool, float]:
    """:func:`_sosfilt` (no sections: no filter) and the crossing rule of
    :func:`positive_zero_crossings_ns` in one pass, without a filtered copy.

    The filter is scipy's ``sosfilt`` kernel operation for operation
    (``y = b0 x + z0``, ``z0 = b1 x - a1 y + z1``, ``z1 = b2 x - a2 y``), its state
    ``zi`` (sections, 2) updated in place.  The scan runs over ``yy = [last_y, *y]``:
    candidate ``j`` has ``yy[j] <= 0 < yy[j + 1]`` and counts when a value below
    ``level`` came since the previous candidate (or, for the first, since the last
    call: ``armed``); every candidate, counted or not, disarms.  Crossing times go
    to ``out``, with the same IEEE operations as the general path (no fast-math).
    Returns the number of crossings, whether the detector is armed at the end and
    the last filtered sample.
    """
    count = 0
    prev = last_y
    if prev < level:
        armed = True
    n_sections = sos.shape[0]
    src = x
    if n_sections == 2:  # the 4th-order low-pass: its state kept in registers
        src = np.empty(x.size)
        _two_sections(sos, zi, x, src)
        n_sections = 0
    for i in range(src.size):
        cur = src[i]
        for s in range(n_sections):
            new = sos[s, 0] * cur + zi[s, 0]
            zi[s, 0] = sos[s, 1] * cur - sos[s, 4] * new + zi[s, 1]
            zi[s, 1] = sos[s, 2] * cur - sos[s, 5] * new
            cur = new
        if prev <= 0.0 and cur > 0.0:
            if armed:
                frac = prev / (prev - cur)
                pos = (i - 1) + frac
                if samples_seen + pos >= warmup:
                    out[count] = t0_ns + np.int64(np.rint(pos * NS_PER_S / fs_hz))
                    count += 1
            armed = False
        if cur < level:
            armed = True
        prev = cur
    return count, armed, prev


@numba.njit(cache=True)
def _two_sections(
    sos: NDArray[np.float64], zi: NDArray[np.float64], x: NDArray[np.float64],
    y: NDArray[np.float64],
) -> None:
    """The filter of :func:`_filter_and_scan` for two sections, operation for
    operation, with the state in local variables: kept in memory, each sample
    waited for its store and load (1.8x slower)."""
    b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
    b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
    z00, z01, z10, z11 = zi[0, 0], zi[0, 1], zi[1, 0], zi[1, 1]
    for i in range(x.size):
        cur = x[i]
        new = b00 * cur + z00
        z00 = b01 * cur - a01 * new + z01
        z01 = b02 * cur - a02 * new
        cur = new
        new = b10 * cur + z10
        z10 = b11 * cur - a11 * new + z11
        z11 = b12 * cur - a12 * new
        y[i] = new
    zi[0, 0], zi[0, 1], zi[1, 0], zi[1, 1] = z00, z01, z10, z11


@dataclass(frozen=True, slots=True)
class IntervalValue:
    """Frequency over one clock-aligned interval; NaN when too few cycles were seen."""

    start_ns: int
    end_ns: int
    f_hz: float


class IntervalFrequency:
    """Frequency per clock-aligned interval from crossing times (IEC 61000-4-30 §5.1).

    Only whole cycles inside the interval count, and only cycles of plausible length
    (within ±20 % of the nominal period): across an interruption, where crossings are
    missing, the gap is not a cycle. An interval whose counted cycles cover less than
    ``min_coverage`` of it gives NaN.
    """

    def __init__(self, interval_s: float, f_nominal_hz: float, min_coverage: float = 0.5) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s: must be > 0, got {interval_s}")
        self.interval_ns = round(interval_s * NS_PER_S)
        self.period_ns = NS_PER_S / f_nominal_hz
        self.min_coverage = min_coverage
        self._index: int | None = None
        self._prev: int | None = None
        self._cycles = 0
        self._span_ns = 0

    def _close(self) -> IntervalValue:
        assert self._index is not None
        start = self._index * self.interval_ns
        f = float("nan")
        if self._cycles and self._span_ns >= self.min_coverage * self.interval_ns:
            f = self._cycles * NS_PER_S / self._span_ns
        self._index += 1
        self._cycles = 0
        self._span_ns = 0
        return IntervalValue(start, start + self.interval_ns, f)

    def push(
        self, crossings_ns: Sequence[int] | NDArray[np.int64], now_ns: int
    ) -> list[IntervalValue]:
        """Add crossings; return intervals completed by them or by time ``now_ns``."""
        out: list[IntervalValue] = []
        times = np.asarray(crossings_ns, dtype=np.int64)
        if times.size:
            # the counted cycles of each interval the crossings fall in, in one pass
            index, cycles, span_ns = np.empty((3, times.size), dtype=np.int64)
            prev = -1 if self._prev is None else self._prev
            n = _cycles_per_interval(times, self.interval_ns, self.period_ns, prev,
                                     self._prev is not None, index, cycles, span_ns)
            for idx, c, span in zip(index[:n].tolist(), cycles[:n].tolist(),
                                    span_ns[:n].tolist(), strict=True):
                if self._index is None:
                    self._index = idx
                while idx > self._index:
                    out.append(self._close())
                self._cycles += c
                self._span_ns += span
            self._prev = int(times[-1])
        if self._index is not None:
            while now_ns >= (self._index + 1) * self.interval_ns:
                out.append(self._close())
        return out

    def reset(self) -> None:
        self._index = None
        self._prev = None
        self._cycles = 0
        self._span_ns = 0


@numba.njit(cache=True)
def _cycles_per_interval(
    times: NDArray[np.int64],
    interval_ns: int,
    period_ns: float,
    prev: int,
    has_prev: bool,
    index: NDArray[np.int64],
    cycles: NDArray[np.int64],
    span_ns: NDArray[np.int64],
) -> int:
    """Group the crossings ``times`` by interval (``time // interval_ns``, in order) into
    ``index``; per interval the cycles counted (between two crossings of that interval,
    the previous one being ``prev`` for the first, of plausible length: within 20 % of
    ``period_ns``) and their total length. Returns the number of intervals."""
    n = 0
    prev_index = prev // interval_ns
    for t in times:
        idx = t // interval_ns
        if n == 0 or idx != index[n - 1]:
            index[n], cycles[n], span_ns[n] = idx, 0, 0
            n += 1
        # a cycle straddling the interval boundary does not count
        if has_prev and prev_index == idx:
            period = t - prev
            if abs(period / period_ns - 1.0) <= 0.2:
                cycles[n - 1] += 1
                span_ns[n - 1] += period
        prev, prev_index, has_prev = t, idx, True
    return n


def recent_frequency_hz(crossings_ns: Sequence[int], f_nominal_hz: float) -> float | None:
    """Frequency from the last crossings [Hz], or None when implausible (±15 % of nominal)."""
    if len(crossings_ns) < 3:
        return None
    span = crossings_ns[-1] - crossings_ns[0]
    if span <= 0:
        return None
    f = (len(crossings_ns) - 1) * NS_PER_S / span
    return f if abs(f / f_nominal_hz - 1.0) <= 0.15 else None


@dataclass(frozen=True, slots=True)
class FrequencyRule:
    """One band check: interval length [s] and allowed band [Hz]."""

    name: str
    interval_s: float
    band_hz: tuple[float, float]
    severity: Severity


class FrequencyDetector:
    """Frequency-deviation events on clock-aligned interval values of one voltage channel."""

    def __init__(
        self,
        channel_id: str,
        phase: str,
        f_nominal_hz: float,
        rules: Sequence[FrequencyRule],
        new_id: Callable[[], int],
    ) -> None:
        for rule in rules:
            lo, hi = rule.band_hz
            if not 0 < lo < f_nominal_hz < hi:
                raise ValueError(
                    f"band_hz: need 0 < low < nominal {f_nominal_hz} < high, got {rule.band_hz}"
                )
        self.channel_id = channel_id
        self.phase = phase
        self.f_nominal_hz = f_nominal_hz
        self.rules = tuple(rules)
        self._new_id = new_id
        self._intervals = [IntervalFrequency(r.interval_s, f_nominal_hz) for r in self.rules]
        self._runs = [SustainedRun(0) for _ in self.rules]
        self._extreme_f = [f_nominal_hz for _ in self.rules]
        self._ids = [0 for _ in self.rules]
        self._zc: ZeroCrossingState | None = None
        self.recent: list[int] = []  # last crossings, for the running estimate
        self.latest_values: list[IntervalValue] = []

    def reset_stream(self) -> None:
        zc = self._zc
        # the filter stays designed
        self._zc = None if zc is None else ZeroCrossingState(
            None, float("nan"), False, 0, zc.sos, zc.design
        )
        self.recent = []

    def prepare(self, fs_hz: float) -> None:
        """Design the low-pass filter for ``fs_hz`` now, not at the first block."""
        self._zc = primed(fs_hz, self.f_nominal_hz)

    def estimate_hz(self) -> float | None:
        """Frequency over the last ten cycles [Hz], None when not measurable."""
        return recent_frequency_hz(self.recent, self.f_nominal_hz)

    def process(
        self, x_v: NDArray[np.float64], t0_ns: int, fs_hz: float, arm_level_v: float,
        *, has_nan: bool | None = None,
    ) -> tuple[list[Event], list[Event]]:
        """Feed one block of the channel's samples; returns (ended, started) events."""
        crossings, self._zc = positive_zero_crossings_ns(
            x_v, t0_ns, fs_hz, self.f_nominal_hz, arm_level_v, self._zc, has_nan=has_nan
        )
        if crossings.size:
            self.recent = (self.recent + crossings.tolist())[-11:]
        now_ns = t0_ns + round(x_v.size * NS_PER_S / fs_hz)
        ended: list[Event] = []
        started: list[Event] = []
        self.latest_values = []
        for r, rule in enumerate(self.rules):
            for iv in self._intervals[r].push(crossings, now_ns):
                if r == 0:
                    self.latest_values.append(iv)
                lo, hi = rule.band_hz
                valid = bool(np.isfinite(iv.f_hz))
                out = valid and not lo <= iv.f_hz <= hi
                dev = abs(iv.f_hz - self.f_nominal_hz) if valid else 0.0
                run = self._runs[r]
                if out and (not run.active or dev > abs(self._extreme_f[r] - self.f_nominal_hz)):
                    self._extreme_f[r] = iv.f_hz
                tr = run.step(out, valid and not out, iv.start_ns, iv.end_ns, dev)
                if isinstance(tr, RunConfirmed):
                    self._ids[r] = self._new_id()
                    started.append(self._event(r, tr.start_ns, None, False))
                elif isinstance(tr, RunEnded):
                    ended.append(self._event(r, tr.start_ns, tr.end_ns, False))
        # An event confirmed and ended within one call is reported once, as ended.
        ended_ids = {e.details["event_id"] for e in ended}
        started = [e for e in started if e.details["event_id"] not in ended_ids]
        return ended, started

    def _event(self, r: int, start_ns: int, end_ns: int | None, open_ended: bool) -> Event:
        rule = self.rules[r]
        f_ext = self._extreme_f[r]
        details: dict[str, float | str | int | bool] = {
            "event_id": self._ids[r],
            "rule": rule.name,
            "interval_s": rule.interval_s,
            "frequency_extreme_hz": f_ext,
            "band_low_hz": rule.band_hz[0],
            "band_high_hz": rule.band_hz[1],
            "nominal_frequency_hz": self.f_nominal_hz,
        }
        if open_ended:
            details["open_ended"] = True
        return Event(
            type=EventType.FREQUENCY_DEVIATION,
            start_ns=start_ns,
            duration_s=None if end_ns is None else (end_ns - start_ns) / NS_PER_S,
            phases=(self.phase,),
            severity=rule.severity,
            channel=self.channel_id,
            extreme_pct=100.0 * f_ext / self.f_nominal_hz,
            details=details,
        )

    def close(self) -> list[Event]:
        """End deviations in progress (end of stream or gap)."""
        out = []
        for r, run in enumerate(self._runs):
            tr = run.close()
            if tr is not None:
                out.append(self._event(r, tr.start_ns, tr.end_ns, True))
            self._intervals[r].reset()
        self.reset_stream()
        return out
