"""Arc fault *suspected*: an advisory current signature, never a protective function.

An AC arc extinguishes at every current zero and re-ignites only once the voltage
across the gap has risen enough, so its current shows flat "shoulders" around the
zero crossings followed by a steep onset; and because re-ignition depends on the
gap's plasma, electrodes and contamination, the waveform changes randomly from one
cycle to the next. Each half cycle of a current channel is scored on two features:

- *dwell*: the fraction of the half cycle during which ``|i|`` stays below
  ``near_zero_fraction`` of that half cycle's peak. A sine spends 2/pi*asin(0.1) =
  6.4 % there; arcing current far more.
- *variation*: the RMS difference between the half cycle and the same half of the
  previous cycle, both normalised to unit RMS, minimised over a small time shift
  (frequency error, jitter). Periodic loads, however distorted (rectifiers, SMPS,
  dimmers, motors), repeat themselves cycle after cycle and score near zero; a
  pure change of amplitude scores zero.

A half cycle is arc-like when both exceed their limits and the current is above
``min_current_a``. Arcing is suspected when ``min_half_cycles`` arc-like half
cycles fall within ``window_s`` (in the spirit of the UL 1699 criterion of 8 arcing
half cycles within 0.5 s) and ends once a whole window passes without one.

What this cannot do: it cannot tell a series arc in a loose terminal from a
parallel arc, a tracking discharge or a brush motor's commutation sparks; loads
whose current shape changes every cycle (phase-angle controllers being adjusted,
some welding and arc-furnace loads) can look alike; arcs at currents below
``min_current_a`` or on circuits sampled below ~2 kHz are not seen. It never
replaces an AFCI (IEC 62606 / UL 1699) or an RCD.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from numpy.typing import NDArray

from collector.events.frames import FrameCutter, Frames
from collector.model import NS_PER_S, Event, EventType, Severity


@dataclass(frozen=True, slots=True)
class ArcSettings:
    """Arc-signature thresholds (see module docstring)."""

    min_current_a: float = 0.5
    near_zero_fraction: float = 0.10
    dwell_min_fraction: float = 0.12
    variation_min: float = 0.07
    min_half_cycles: int = 8
    window_s: float = 0.5
    max_shift_samples: float = 2.0
    min_samples_per_half_cycle: int = 20

    def __post_init__(self) -> None:
        if not self.min_current_a > 0:
            raise ValueError(f"arc_min_current_a: must be > 0, got {self.min_current_a}")
        for name in ("near_zero_fraction", "dwell_min_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"arc_{name}: must be in (0, 1), got {value}")
        if not self.variation_min > 0:
            raise ValueError(f"arc_variation_min: must be > 0, got {self.variation_min}")
        if self.min_half_cycles < 1:
            raise ValueError(f"arc_min_half_cycles: must be >= 1, got {self.min_half_cycles}")
        if not self.window_s > 0:
            raise ValueError(f"arc_window_s: must be > 0, got {self.window_s}")


_SHIFT_STEP_SAMPLES = 0.25
# Margins of the screen (see ArcDetector._may_be_arc_like) over the rounding of its
# sums, which differ from the scoring's own: far above 1e-15, far below anything real.
_CURRENT_MARGIN = 1e-9
_VARIATION_MARGIN = 1e-6


def dwell_fraction(seg: NDArray[np.float64], near_zero_fraction: float) -> NDArray[np.float64]:
    """Share of each row's samples with ``|i|`` below ``near_zero_fraction`` of its peak.

    Parameters
    ----------
    seg : NDArray[np.float64]
        Half-cycle segments, shape (..., L) [A] (e.g. channels x half cycles x L).
    near_zero_fraction : float
        Fraction of the segment's peak that counts as "not conducting" [-].

    Returns
    -------
    NDArray[np.float64]
        Shape (...,), in [0, 1]; 1 for an all-zero segment.
    """
    mag = np.abs(seg)
    peak = mag.max(axis=-1, keepdims=True)
    out: NDArray[np.float64] = np.mean(mag <= near_zero_fraction * peak, axis=-1)
    return out


def cycle_variation(
    data: NDArray[np.float64], i0: int, i1: int, period_samples: float, max_shift: float
) -> float | None:
    """Shape change of ``data[i0:i1]`` against the same half one cycle earlier.

    Both are normalised to unit RMS; the earlier one is read at fractional positions
    (linear interpolation) shifted by up to ``max_shift`` samples in quarter-sample
    steps, and the smallest RMS difference is returned.

    Parameters
    ----------
    data : NDArray[np.float64]
        One channel's samples, shape (m,) [A], holding at least one cycle plus
        ``max_shift`` samples before ``i0``.
    i0, i1 : int
        Half-cycle sample range.
    period_samples : float
        One cycle [samples] (fractional).
    max_shift : float
        Largest extra shift tried [samples].

    Returns
    -------
    float | None
        RMS difference of the normalised shapes [-] (0 for a periodic signal, about
        1.4 for unrelated ones); None without enough valid history.
    """
    if i1 - i0 < 1:
        return None
    variation = float(_cycle_variations(data, [i0], i1 - i0, period_samples, max_shift)[0])
    return None if np.isnan(variation) else variation


def _cycle_variations(
    data: NDArray[np.float64], starts: list[int], length: int, period_samples: float,
    max_shift: float,
) -> NDArray[np.float64]:
    """:func:`cycle_variation` of the half cycles ``[i0, i0 + length)`` for ``i0`` in
    ``starts`` of one channel, at once; NaN where that gives None."""
    i0 = np.asarray(starts, dtype=np.int64)
    out = np.empty(i0.size)
    _variations(np.ascontiguousarray(data, dtype=np.float64), i0, i0 + length,
                float(period_samples), _shifts(max_shift), out)
    return out


def _shifts(max_shift: float) -> NDArray[np.float64]:
    """Shifts tried by :func:`cycle_variation` [samples]."""
    return np.arange(-max_shift, max_shift + 1e-9, _SHIFT_STEP_SAMPLES)


@numba.njit(cache=True)
def _variations(
    data: NDArray[np.float64],
    starts: NDArray[np.int64],
    ends: NDArray[np.int64],
    period: float,
    shifts: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """:func:`_cycle_variations` of the half cycles ``[starts[k], ends[k])`` into
    ``out``: the RMS difference of a half cycle's unit-RMS shape and that of the
    samples one cycle earlier, read at ``shifts`` (linear interpolation) and
    normalised likewise; the smallest over the shifts, 1.0 when every earlier reading
    is all zero, NaN when unusable (too little history, a missing sample)."""
    max_shift = -shifts[0]
    longest = 0
    for k in range(starts.size):
        longest = max(longest, ends[k] - starts[k])
    earlier = np.empty(longest)
    for k in range(starts.size):
        i0, length = starts[k], ends[k] - starts[k]
        out[k] = np.nan
        first = i0 - period - max_shift
        if not first >= 0 or length < 2:
            continue
        if np.isnan(data[math.floor(first):i0 + length]).any():
            continue
        seg = data[i0:i0 + length]
        seg_rms = math.sqrt((seg * seg).sum() / length)
        if seg_rms == 0.0:
            continue
        inv_seg = 1.0 / seg_rms
        best = np.inf
        for shift in shifts:
            # the samples one cycle (and the shift) earlier all lie the same fraction
            # u past a whole sample: one floor per shift, not per sample (with the
            # divisions below made multiplications, 2.4x faster; the result moves by
            # ~1e-14 of itself)
            pos = (float(i0) - period) + shift
            j0 = math.floor(pos)
            u = pos - j0
            src = data[j0:j0 + length + 1]
            energy = 0.0
            for n in range(length):
                value = src[n] * (1.0 - u) + src[n + 1] * u
                earlier[n] = value
                energy += value * value
            earlier_rms = math.sqrt(energy / length)
            if not earlier_rms > 0:
                continue
            inv_earlier = 1.0 / earlier_rms
            total = 0.0
            for n in range(length):
                d = seg[n] * inv_seg - earlier[n] * inv_earlier
                total += d * d
            best = min(best, math.sqrt(total / length))
        out[k] = best if best < np.inf else 1.0


@numba.njit(cache=True)
def _half_cycle_stats(
    data: NDArray[np.float64],
    edges: NDArray[np.int64],
    near_zero_fraction: float,
    rms: NDArray[np.float64],
    dwell: NDArray[np.float64],
) -> None:
    """RMS and :func:`dwell_fraction` of every half cycle ``[edges[k], edges[k + 1])`` of
    every row of ``data``, into ``rms`` and ``dwell`` (rows, half cycles). A missing
    sample makes the RMS NaN and the dwell 0, as with numpy."""
    for r in range(data.shape[0]):
        row = data[r]
        for k in range(edges.size - 1):
            seg = row[edges[k]:edges[k + 1]]
            total = 0.0
            peak = 0.0
            for v in seg:
                total += v * v
                peak = max(peak, abs(v))  # NaN: total is NaN, no sample counts below
            rms[r, k] = math.sqrt(total / seg.size)
            near = 0
            if total == total:
                level = near_zero_fraction * peak
                for v in seg:
                    near += abs(v) <= level
            dwell[r, k] = near / seg.size


def compile_loops() -> None:
    """Compile this module's numba loops now, or load them from numba's cache: at
    start-up rather than at the first block (a fraction of a second)."""
    _screen(np.zeros((1, 8)), np.array([4, 6], dtype=np.int64), 0, 2, 0.0, 1.0, 1.0,
            np.zeros(1, dtype=bool))
    _cycle_variations(np.zeros(8), [6], 2, 2.0, 0.5)
    stats = np.empty((1, 1))
    _half_cycle_stats(np.zeros((1, 8)), np.array([4, 6], dtype=np.int64), 0.1, stats,
                      stats.copy())


@dataclass
class _ChannelState:
    recent: deque[tuple[int, int]] = field(default_factory=deque)  # arc-like (start, end)
    active: bool = False
    event_id: int = 0
    start_ns: int = 0
    last_arc_ns: int = 0
    arc_half_cycles: int = 0
    current_max_a: float = 0.0


class ArcDetector:
    """Advisory arc-signature detection on a set of current channels."""

    def __init__(
        self,
        channel_ids: Sequence[str],
        phases: Sequence[str],
        settings: ArcSettings,
        new_id: Callable[[], int],
    ) -> None:
        self.channel_ids = tuple(channel_ids)
        self.phases = tuple(phases)
        self.settings = settings
        self._new_id = new_id
        self._states = [_ChannelState() for _ in self.channel_ids]
        self._cutter: FrameCutter | None = None
        self._fs_hz = 0.0

    def reset_stream(self) -> None:
        self._cutter = None

    def history_samples(self, period: float) -> int:
        """Samples before each frame that :meth:`process_frames` needs [samples]: one
        cycle of ``period`` samples, the largest shift and the interpolation."""
        return int(np.ceil(period + self.settings.max_shift_samples)) + 2

    def process(
        self, x_a: NDArray[np.float64], t0_ns: int, fs_hz: float, f_hz: float,
        *, has_nan: bool | None = None,
    ) -> tuple[list[Event], list[Event]]:
        """Feed one block of the channels' samples (n_channels, n) [A]; ``has_nan``
        (whether ``x_a`` has a NaN) is unused: the screen copes with missing samples."""
        period = fs_hz / f_hz
        if self._cutter is None or fs_hz != self._fs_hz:
            self._cutter = FrameCutter(len(self.channel_ids), self.history_samples(period))
            self._fs_hz = fs_hz
        return self.process_frames(
            self._cutter.push(x_a, t0_ns, fs_hz, 0.5 * period), slice(None), period
        )

    def process_frames(
        self, frames: Frames, rows: slice | list[int], period: float
    ) -> tuple[list[Event], list[Event]]:
        """Feed the half-cycle frames of the next block whose rows ``rows`` are the
        channels' samples [A] (from a cutter keeping :meth:`history_samples`, which
        the caller may share with other detectors); ``period``: one cycle [samples]."""
        s = self.settings
        ended: list[Event] = []
        started: list[Event] = []
        if not frames.count:
            return ended, started
        data = frames.data[rows]
        # Only channels where a half cycle can be arc-like are scored; those with an
        # event or recent arc-like half cycles are updated half cycle by half cycle
        # too (none of their half cycles here is arc-like); the others have nothing
        # to update.
        scored = np.flatnonzero(self._may_be_arc_like(data, frames.edges, period))
        busy = [c for c, st in enumerate(self._states) if st.active or st.recent]
        if not scored.size and not busy:
            return ended, started
        n_frames = frames.count
        quiet = [False] * n_frames
        rms: dict[int, list[float]] = {}
        arc_like_of: dict[int, list[bool]] = {}
        if scored.size:
            rms_l, arc_like_l = self._score(data[scored], frames.edges, period)
            rms = dict(zip(scored.tolist(), rms_l, strict=True))
            arc_like_of = dict(zip(scored.tolist(), arc_like_l, strict=True))
        channels = sorted(set(busy).union(arc_like_of))
        arc_like_rows = [arc_like_of.get(c, quiet) for c in channels]
        times = frames.times_ns().tolist()
        window_ns = round(s.window_s * NS_PER_S)
        for k in range(n_frames):
            f_start, f_end = times[k], times[k + 1]
            for j, c in enumerate(channels):
                st = self._states[c]
                if arc_like_rows[j][k]:
                    st.recent.append((f_start, f_end))
                    if st.active:
                        st.last_arc_ns = f_end
                        st.arc_half_cycles += 1
                        st.current_max_a = max(st.current_max_a, rms[c][k])
                while st.recent and st.recent[0][1] <= f_end - window_ns:
                    st.recent.popleft()
                if not st.active and len(st.recent) >= s.min_half_cycles:
                    # only an arc-like half cycle (of a scored channel) gets here
                    st.active, st.event_id = True, self._new_id()
                    st.start_ns, st.last_arc_ns = st.recent[0][0], st.recent[-1][1]
                    st.arc_half_cycles = len(st.recent)
                    st.current_max_a = rms[c][k]
                    started.append(self._event(c, None))
                elif st.active and f_end - st.last_arc_ns >= window_ns:
                    ended.append(self._event(c, st.last_arc_ns))
                    st.active = False
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    def _score(
        self, data: NDArray[np.float64], edges: NDArray[np.int64], period: float
    ) -> tuple[list[list[float]], list[list[bool]]]:
        """RMS [A] and arc-likeness of every half cycle ``[edges[k], edges[k + 1])`` of
        every row of ``data``, as lists (row, half cycle): :func:`dwell_fraction` and
        :func:`cycle_variation` of every half cycle, in compiled loops."""
        s = self.settings
        data = np.ascontiguousarray(data)
        n_rows, n_frames = data.shape[0], edges.size - 1
        rms = np.empty((n_rows, n_frames))
        dwell = np.empty((n_rows, n_frames))
        _half_cycle_stats(data, edges, s.near_zero_fraction, rms, dwell)
        # the shape comparison is the costly part: only for candidates
        candidates = (rms >= s.min_current_a) & (dwell >= s.dwell_min_fraction)
        arc_like = np.zeros((n_rows, n_frames), dtype=bool)
        shifts = _shifts(s.max_shift_samples)
        for j in np.flatnonzero(candidates.any(axis=1)).tolist():
            picked = np.flatnonzero(candidates[j])
            variation = np.empty(picked.size)
            _variations(data[j], edges[picked], edges[picked + 1], period, shifts, variation)
            arc_like[j, picked] = variation >= s.variation_min
        return rms.tolist(), arc_like.tolist()

    def _may_be_arc_like(
        self, data: NDArray[np.float64], edges: NDArray[np.int64], period: float
    ) -> NDArray[np.bool_]:
        """Per channel: can any of the half cycles ``[edges[k], edges[k + 1])`` be
        arc-like? False is certain.

        One compiled loop over channels and half cycles, with the scoring's necessary
        conditions: the half cycle's RMS at least ``min_current_a``, and a shape
        change from one cycle earlier. The variation is at most its value for the
        unshifted comparison, which is at most ``2 * rms(seg - prev) / rms(seg)``
        (triangle inequality, with ``|rms(prev) - rms(seg)| <= rms(seg - prev)``):
        below ``variation_min`` the half cycle is certainly not arc-like. A half cycle
        without a full cycle of history before it is never arc-like (no variation).
        """
        s = self.settings
        # _cycle_variations' test of enough history; it grows with the edge, so only
        # the first half cycles after a start can fail it
        first, count = 0, edges.size - 1
        while first < count and (int(edges[first]) - period) - s.max_shift_samples < 0:
            first += 1
        hot = np.zeros(data.shape[0], dtype=bool)
        if first == count:
            return hot
        # 4 * change < v^2 * energy as change < v^2/4 * energy: scaling by 4 is exact
        steady = 0.25 * s.variation_min**2 * (1.0 - _VARIATION_MARGIN)
        least = s.min_current_a**2 * (1.0 - _CURRENT_MARGIN)
        back = math.ceil(period)
        # (a cutter's data is in C order already: the loop is compiled for that)
        _screen(np.ascontiguousarray(data), edges, first, back, back - period, least, steady,
                hot)
        return hot


    def _event(self, c: int, end_ns: int | None, open_ended: bool = False) -> Event:
        st = self._states[c]
        details: dict[str, float | str | int | bool] = {
            "event_id": st.event_id,
            "advisory": True,
            "arc_like_half_cycles": st.arc_half_cycles,
            "current_rms_max_a": st.current_max_a,
            "note": "signature only; never replaces an AFCI or RCD",
        }
        if open_ended:
            details["open_ended"] = True
        return Event(
            type=EventType.ARC_FAULT_SUSPECTED,
            start_ns=st.start_ns,
            duration_s=None if end_ns is None else (end_ns - st.start_ns) / NS_PER_S,
            phases=(self.phases[c],),
            severity=Severity.WARNING,
            channel=self.channel_ids[c],
            details=details,
        )

    def close(self) -> list[Event]:
        """End suspected arcing in progress (end of stream or gap)."""
        out = []
        for c, st in enumerate(self._states):
            if st.active:
                out.append(self._event(c, st.last_arc_ns, True))
                st.active = False
            st.recent.clear()
        self.reset_stream()
        return out


@numba.njit(cache=True, fastmath={"reassoc", "nsz"})
def _screen(
    data: NDArray[np.float64],
    edges: NDArray[np.int64],
    first: int,
    back: int,
    u: float,
    least: float,
    steady: float,
    hot: NDArray[np.bool_],
) -> None:
    """:meth:`ArcDetector._may_be_arc_like` for half cycles ``first`` on: ``hot[r]``
    set where row ``r`` has one with energy at least ``least`` per sample and a change
    from one cycle earlier (``back`` samples less ``u``, interpolated as in
    cycle_variation's zero shift) not below ``steady`` times its energy.

    Sums in any order (vectorised; the screen's margins cover their rounding). A NaN
    makes its half cycle not loud or not steady; either way the scoring finds it not
    arc-like (NaN RMS, or NaN history).
    """
    for r in range(data.shape[0]):
        row = data[r]
        for k in range(first, edges.size - 1):
            i0, i1 = edges[k], edges[k + 1]
            seg = row[i0:i1]
            energy = 0.0
            for i in range(seg.size):
                energy += seg[i] * seg[i]
            if not energy >= least * (i1 - i0):
                continue
            a = row[i0 - back:i1 - back]
            b = row[i0 - back + 1:i1 - back + 1]
            change = 0.0
            for i in range(seg.size):
                d = seg[i] - ((b[i] - a[i]) * u + a[i])
                change += d * d
            if not change < steady * energy:
                hot[r] = True
                break
