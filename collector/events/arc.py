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

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from collector.events.frames import FrameCutter
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
    out = np.full(len(starts), np.nan)
    i0 = np.asarray(starts, dtype=np.int64)
    first = i0 - period_samples - max_shift
    segs = sliding_window_view(data, length)[i0]
    rms = np.sqrt(np.mean(segs * segs, axis=1))
    usable = (rms != 0.0) & (first >= 0) & (length >= 2)
    for k in np.flatnonzero(usable).tolist():
        if np.isnan(data[int(np.floor(first[k])):starts[k] + length]).any():
            usable[k] = False
    if not usable.any():
        return out
    take = np.flatnonzero(usable)
    seg, seg_rms = segs[take], rms[take]
    shifts = np.arange(-max_shift, max_shift + 1e-9, _SHIFT_STEP_SAMPLES)
    base = (i0[take, None] + np.arange(length)).astype(np.float64) - period_samples
    pos = base[None, :, :] + shifts[:, None, None]  # (shift, half cycle, sample)
    j = np.floor(pos).astype(np.int64)
    u = pos - j
    prev = data[j] * (1.0 - u) + data[j + 1] * u
    prev_rms = np.sqrt(np.mean(prev * prev, axis=2))
    ok = prev_rms > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = seg[None, :, :] / seg_rms[None, :, None] - prev / prev_rms[:, :, None]
    score = np.sqrt(np.mean(diff * diff, axis=2))
    best = np.where(ok, score, np.inf).min(axis=0)
    out[take] = np.where(ok.any(axis=0), best, 1.0)
    return out


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

    def process(
        self, x_a: NDArray[np.float64], t0_ns: int, fs_hz: float, f_hz: float,
        *, has_nan: bool | None = None,
    ) -> tuple[list[Event], list[Event]]:
        """Feed one block of the channels' samples (n_channels, n) [A]; ``has_nan``
        (whether ``x_a`` has a NaN) is unused: the screen copes with missing samples."""
        s = self.settings
        period = fs_hz / f_hz
        ended: list[Event] = []
        started: list[Event] = []
        if self._cutter is None or fs_hz != self._fs_hz:
            history = int(np.ceil(period + s.max_shift_samples)) + 2
            self._cutter = FrameCutter(len(self.channel_ids), history)
            self._fs_hz = fs_hz
        frames = self._cutter.push(x_a, t0_ns, fs_hz, 0.5 * period)
        if not frames.bounds:
            return ended, started
        # Channels with nothing going on and no half cycle that can be arc-like have
        # nothing to update: only the others are scored half cycle by half cycle.
        hot = self._may_be_arc_like(frames.data, frames.bounds, period)
        for c, st in enumerate(self._states):
            if st.active or st.recent:
                hot[c] = True
        channels = np.flatnonzero(hot).tolist()
        if not channels:
            return ended, started
        data = frames.data[channels]
        bounds = frames.bounds
        rms, arc_like_all = self._score(data, bounds, period)
        start_ns, end_ns = frames.start_ns, frames.end_ns
        window_ns = round(s.window_s * NS_PER_S)
        for k in range(len(bounds)):
            f_start, f_end = start_ns[k], end_ns[k]
            for j, c in enumerate(channels):
                st = self._states[c]
                arc_like = arc_like_all[j][k]
                if arc_like:
                    st.recent.append((f_start, f_end))
                    if st.active:
                        st.last_arc_ns = f_end
                        st.arc_half_cycles += 1
                        st.current_max_a = max(st.current_max_a, rms[j][k])
                while st.recent and st.recent[0][1] <= f_end - window_ns:
                    st.recent.popleft()
                if not st.active and len(st.recent) >= s.min_half_cycles:
                    st.active, st.event_id = True, self._new_id()
                    st.start_ns, st.last_arc_ns = st.recent[0][0], st.recent[-1][1]
                    st.arc_half_cycles = len(st.recent)
                    st.current_max_a = rms[j][k]
                    started.append(self._event(c, None))
                elif st.active and f_end - st.last_arc_ns >= window_ns:
                    ended.append(self._event(c, st.last_arc_ns))
                    st.active = False
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    def _score(
        self, data: NDArray[np.float64], bounds: list[tuple[int, int]], period: float
    ) -> tuple[list[list[float]], list[list[bool]]]:
        """RMS [A] and arc-likeness of every half cycle ``bounds`` of every row of
        ``data``, as lists (row, half cycle). The same per-half-cycle arithmetic as
        :func:`dwell_fraction` and :func:`cycle_variation`, done for all half cycles of
        one length at once (half cycles differ in length by at most one sample)."""
        s = self.settings
        n_rows, n_frames = data.shape[0], len(bounds)
        rms = np.empty((n_rows, n_frames))
        dwell = np.empty((n_rows, n_frames))
        groups: dict[int, list[int]] = {}
        for k, (i0, i1) in enumerate(bounds):
            groups.setdefault(i1 - i0, []).append(k)
        for length, ks in groups.items():
            seg = sliding_window_view(data, length, axis=1)[:, [bounds[k][0] for k in ks]]
            rms[:, ks] = np.sqrt(np.mean(seg * seg, axis=2))  # NaN stays NaN: not arc-like
            dwell[:, ks] = dwell_fraction(seg, s.near_zero_fraction)
        # the shape comparison is the costly part: only for candidates
        candidates = (rms >= s.min_current_a) & (dwell >= s.dwell_min_fraction)
        arc_like = np.zeros((n_rows, n_frames), dtype=bool)
        for j in np.flatnonzero(candidates.any(axis=1)).tolist():
            for length, ks in groups.items():
                picked = [k for k in ks if candidates[j, k]]
                if picked:
                    variation = _cycle_variations(
                        data[j], [bounds[k][0] for k in picked], length, period,
                        s.max_shift_samples,
                    )
                    arc_like[j, picked] = variation >= s.variation_min
        return rms.tolist(), arc_like.tolist()

    def _may_be_arc_like(
        self, data: NDArray[np.float64], bounds: list[tuple[int, int]], period: float
    ) -> NDArray[np.bool_]:
        """Per channel: can any of these half cycles be arc-like? False is certain.

        Vectorised over channels and half cycles, with the scoring's necessary
        conditions: the half cycle's RMS at least ``min_current_a``, and a shape
        change from one cycle earlier. The variation is at most its value for the
        unshifted comparison, which is at most ``2 * rms(seg - prev) / rms(seg)``
        (triangle inequality, with ``|rms(prev) - rms(seg)| <= rms(seg - prev)``):
        below ``variation_min`` the half cycle is certainly not arc-like. A half cycle
        without a full cycle of history before it is never arc-like (no variation).
        """
        s = self.settings
        hot = np.zeros(data.shape[0], dtype=bool)
        usable = [b for b in bounds if b[0] - period - s.max_shift_samples >= 0]
        if not usable:
            return hot
        lo, hi = usable[0][0], usable[-1][1]
        starts = [i0 - lo for i0, _ in usable]
        least = s.min_current_a**2 * (1.0 - _CURRENT_MARGIN)
        floor = np.array([least * (i1 - i0) for i0, i1 in usable])
        x = data[:, lo:hi]
        energy = np.add.reduceat(x * x, starts, axis=1)
        # NaN energy: the scoring's RMS is NaN too, never a candidate
        loud = energy >= floor
        any_loud = loud.any(axis=1)
        if not any_loud.any():
            return hot
        # only the loud rows (all of them without copying, when all are)
        rows: slice | NDArray[np.intp] = (
            slice(None) if any_loud.all() else np.flatnonzero(any_loud)
        )
        # one cycle earlier, linearly interpolated as in cycle_variation's zero shift
        back = math.ceil(period)
        u = back - period
        a = data[rows, lo - back:hi - back]
        b = data[rows, lo - back + 1:hi - back + 1]
        diff = b - a
        diff *= u
        diff += a
        np.subtract(x[rows], diff, out=diff)
        np.multiply(diff, diff, out=diff)
        change = np.add.reduceat(diff, starts, axis=1)
        steady = 4.0 * change < s.variation_min**2 * (1.0 - _VARIATION_MARGIN) * energy[rows]
        hot[rows] = (loud[rows] & ~steady).any(axis=1)
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
