"""Sensor and signal-chain faults seen in the samples themselves.

Kinds (``details["fault"]``):

- ``missing_samples``: a run of NaN samples at least ``nan_min_cycles`` long (bus
  read errors, a dead converter).
- ``stuck``: the channel holds a constant non-zero value (peak-to-peak within
  ``flat_counts`` ADC steps) for ``flat_min_cycles``: an AC quantity cannot do
  that; typical of a hung converter or a biased sensor whose input came loose.
- ``clipping``: at least ``clipping_min_samples`` samples of a half cycle at or
  beyond the channel's ``full_scale``: RMS, peak and power are then wrong.
- ``dc_offset``: the one-cycle mean beyond ``dc_offset_pct`` of full scale for
  ``dc_offset_min_s``. On current channels the offset must also exceed the AC
  content, so a half-wave rectifier load (mean ≈ 0.8x its AC RMS) is not mistaken
  for a sensor fault.

A *disconnected* sensor shows up as ``stuck`` (a converter input pinned to one
code) or ``dc_offset`` (a biased sensor such as a ZMPT101B or ACS712 that lost its
signal reads its bias or a rail). A voltage input that simply reads ~0 cannot be
told from a lost phase by its samples; the dip/interruption detector reports that.
A current channel at zero is an idle circuit, never a fault.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from collector.events.frames import FrameCutter, Frames
from collector.events.persistence import RunConfirmed, RunEnded, SustainedRun
from collector.model import NS_PER_S, ChannelInfo, Event, EventType, Quantity, Severity

_KINDS = ("stuck", "clipping", "dc_offset")
# Screen margin for the one-cycle mean (see SensorFaultDetector._may_start): a run
# can only start where |mean| exceeds the limit, the screen looks from half of it.
_DC_SCREEN_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class SensorSettings:
    """Sensor-fault thresholds (see module docstring)."""

    flat_min_cycles: float = 10.0
    flat_counts: float = 2.0
    clipping_min_samples: int = 2
    nan_min_cycles: float = 1.0
    dc_offset_pct: float = 10.0
    dc_offset_min_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("flat_min_cycles", "flat_counts", "nan_min_cycles", "dc_offset_min_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"sensor_{name}: must be >= 0, got {value}")
        if self.clipping_min_samples < 1:
            raise ValueError(
                f"sensor_clipping_min_samples: must be >= 1, got {self.clipping_min_samples}"
            )
        if not 0 < self.dc_offset_pct <= 100:
            raise ValueError(
                f"sensor_dc_offset_pct: must be in (0, 100], got {self.dc_offset_pct}"
            )


def _flat_tolerance(ch: ChannelInfo, counts: float) -> float:
    """Largest peak-to-peak [V or A] that still counts as 'not moving'."""
    if ch.resolution is not None and ch.resolution > 0:
        return counts * ch.resolution
    if ch.full_scale is not None and ch.full_scale > 0:
        return 1e-6 * ch.full_scale
    return 0.0  # unknown resolution: only an exactly constant value is flat


def compile_loops() -> None:
    """Compile this module's numba loops now, or load them from numba's cache: at
    start-up rather than at the first block (a fraction of a second)."""
    inf = np.full(1, np.inf)
    _screen(np.zeros((1, 8)), np.array([4, 6], dtype=np.int64), 2, np.zeros(1), inf, inf, inf,
            np.zeros(1, dtype=bool))
    one = np.empty((1, 1))
    _frame_stats(np.zeros((1, 8)), np.array([[4, 6]], dtype=np.int64), 2, inf,
                 np.empty((1, 1), dtype=bool), one, one.copy(), one.copy(),
                 np.empty((1, 1), dtype=np.int64))


class SensorFaultDetector:
    """Sensor faults of all channels of one source."""

    def __init__(
        self,
        channels: Sequence[ChannelInfo],
        phases: Sequence[str],
        settings: SensorSettings,
        f_nominal_hz: float,
        new_id: Callable[[], int],
    ) -> None:
        self.channels = tuple(channels)
        self.phases = tuple(phases)
        self.settings = settings
        self._new_id = new_id
        n = len(self.channels)
        self._tol = np.array([_flat_tolerance(c, settings.flat_counts) for c in self.channels])
        self._fs = np.array([c.full_scale or np.inf for c in self.channels], dtype=np.float64)
        self._is_voltage = np.array([c.quantity is Quantity.VOLTAGE for c in self.channels])
        period_ns = NS_PER_S / f_nominal_hz
        min_ns = {
            "stuck": round(settings.flat_min_cycles * period_ns),
            "clipping": 0,
            "dc_offset": round(settings.dc_offset_min_s * NS_PER_S),
        }
        self._runs = {(c, kind): SustainedRun(min_ns[kind]) for c in range(n) for kind in _KINDS}
        self._ids: dict[tuple[int, str], int] = {}
        self._nan_min_s = settings.nan_min_cycles / f_nominal_hz
        self._nan_run = np.zeros(n, dtype=np.int64)  # NaN samples at the end of the stream
        self._nan_start_ns = np.zeros(n, dtype=np.int64)
        self._nan_announced = np.zeros(n, dtype=bool)
        self._nan_last_ns = np.zeros(n, dtype=np.int64)
        self._nan_open = False  # a NaN run reaches the end of the last block
        self._has_full_scale = np.isfinite(self._fs).tolist()
        # DC offset limit per channel (infinite without a full scale: never an offset)
        self._dc_limit = settings.dc_offset_pct / 100.0 * self._fs
        # a peak within the screen's level (less a margin for rounding) cannot reach it
        self._dc_peak_level = _DC_SCREEN_FRACTION * self._dc_limit * (1.0 - 1e-9)
        self._dc_cycle = 0
        self._dc_screen = np.zeros(n)
        self._busy: set[int] = set()  # channels with a run in progress
        self._cutter: FrameCutter | None = None
        self._fs_hz = 0.0

    def reset_stream(self) -> None:
        self._cutter = None

    def history_samples(self, period: float) -> int:
        """Samples before each frame that :meth:`process_frames` needs: a cycle of
        ``period`` samples [samples]."""
        return int(np.ceil(period)) + 1

    def process(
        self, x: NDArray[np.float64], t0_ns: int, fs_hz: float, f_hz: float,
        *, has_nan: bool | None = None,
    ) -> tuple[list[Event], list[Event]]:
        """Feed one block (n_channels, n); returns (ended, started) events. ``has_nan``:
        whether ``x`` has a NaN, when the caller knows already."""
        period = fs_hz / f_hz
        if self._cutter is None or fs_hz != self._fs_hz:
            self._cutter = FrameCutter(len(self.channels), self.history_samples(period))
            self._fs_hz = fs_hz
        frames = self._cutter.push(x, t0_ns, fs_hz, 0.5 * period)
        return self.process_frames(x, frames, period, has_nan=has_nan)

    def process_frames(
        self, x: NDArray[np.float64], frames: Frames, period: float,
        *, has_nan: bool | None = None,
    ) -> tuple[list[Event], list[Event]]:
        """:meth:`process` with the block's half-cycle frames cut already (by a cutter
        keeping at least :meth:`history_samples`, which the caller may share with
        other detectors); ``period``: one cycle [samples]."""
        ended: list[Event] = []
        started: list[Event] = []
        if has_nan is None:
            has_nan = bool(np.isnan(x).any())
        if has_nan or self._nan_open:
            self._missing_samples(x, frames.t0_ns, frames.fs_hz, ended, started)
        cycle = round(period)
        # the frames with a cycle of history (frame ends grow: the last ones)
        first = int(np.searchsorted(frames.edges[1:], cycle))
        if first < frames.count:
            # Channels without a run in progress where no run can start in this block
            # have nothing to update: only the others are checked frame by frame.
            hot = self._may_start(frames.data, frames.edges[first + 1:], cycle)
            hot[list(self._busy)] = True
            channels = np.flatnonzero(hot)
            if channels.size:
                edges = frames.edges[first:].tolist()
                times = frames.times_ns()[first:].tolist()
                self._frames(
                    channels, frames.data[channels], list(itertools.pairwise(edges)), cycle,
                    times[:-1], times[1:], ended, started,
                )
                for c in channels.tolist():
                    if any(self._runs[(c, kind)].active for kind in _KINDS):
                        self._busy.add(c)
                    else:
                        self._busy.discard(c)
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    def _may_start(
        self, data: NDArray[np.float64], ends: NDArray[np.int64], cycle: int
    ) -> NDArray[np.bool_]:
        """Per channel: can a stuck, clipping or DC-offset run start in the frames
        ending at ``ends`` (increasing columns of ``data``)? False is certain.

        - stuck needs a one-cycle window with peak-to-peak within the tolerance and
          ``|mean|`` above it, hence every sample of one sign; every window holds a
          whole chunk of ``ceil(cycle / 2)`` samples of the grid below, which then is
          as flat and of one sign;
        - clipping needs a sample at or beyond full scale;
        - a DC offset needs ``|mean|`` of a one-cycle window above its limit, which
          needs a peak above it.

        Missing samples count as anything (a window with one is skipped anyway).
        One compiled loop over channels and chunks (:func:`_screen`).
        """
        if cycle != self._dc_cycle:
            # |sum| over a cycle that may exceed the limit: from half of it
            self._dc_cycle = cycle
            self._dc_screen = _DC_SCREEN_FRACTION * cycle * self._dc_limit
        hot = np.zeros(data.shape[0], dtype=bool)
        # (a cutter's data is in C order already: the loop is compiled for that)
        _screen(np.ascontiguousarray(data), np.ascontiguousarray(ends, dtype=np.int64), cycle,
                self._tol, self._fs, self._dc_peak_level, self._dc_screen, hot)
        return hot

    def _frames(
        self,
        channels: NDArray[np.int64],
        data: NDArray[np.float64],
        bounds: list[tuple[int, int]],
        cycle: int,
        start_ns: list[int],
        end_ns: list[int],
        ended: list[Event],
        started: list[Event],
    ) -> None:
        """Check frames ``bounds`` (``[i0, i1)`` columns of ``data``, the rows of
        ``channels``): the last cycle of each for stuck and DC offset, the frame itself
        for clipping. Statistics for all frames at once, then the runs frame by frame
        (a frame where a channel misses samples does not touch its runs)."""
        s = self.settings
        tol = self._tol[channels][:, None]
        shape = (len(channels), len(bounds))
        valid = np.empty(shape, dtype=bool)
        ptp, mean, ac_rms = np.empty(shape), np.empty(shape), np.empty(shape)
        clipped_a = np.empty(shape, dtype=np.int64)
        _frame_stats(np.ascontiguousarray(data), np.array(bounds, dtype=np.int64).reshape(-1, 2),
                     cycle, self._fs[channels], valid, ptp, mean, ac_rms, clipped_a)
        flat = valid & (ptp <= tol)
        at_zero = flat & (np.abs(mean) <= np.maximum(tol, 1e-12))
        # per kind: (on, off, value) of every channel and frame; a frame where the
        # channel misses samples is neither on nor off and is not fed to the runs
        offset = np.abs(mean)
        limit = self._dc_limit[channels][:, None]
        need_ac = np.where(self._is_voltage[channels][:, None], 0.0, ac_rms)
        conditions = {
            "stuck": (flat & ~at_zero, ~flat, mean),
            "clipping": (valid & (clipped_a >= s.clipping_min_samples),
                         valid & (clipped_a == 0), clipped_a.astype(np.float64)),
            "dc_offset": (valid & (offset > limit) & (offset > need_ac),
                          valid & (offset <= 0.8 * limit), offset),
        }
        # A run that is not active ignores frames until one is "on": only the runs
        # in progress and those with an "on" frame are stepped, from that frame on
        # (the frame-by-frame loop for all channels cost ~1 ms per block). Their
        # transitions are then reported in frame, channel, kind order, as a loop over
        # frames would.
        transitions: list[tuple[int, int, int, int, str, RunConfirmed | RunEnded]] = []
        ends = np.asarray(end_ns, dtype=np.int64)
        n_frames = len(bounds)
        for j, c in enumerate(channels.tolist()):
            for order, kind in enumerate(_KINDS):
                if kind == "dc_offset" and not self._has_full_scale[c]:
                    continue
                on, off, value = (a[j] for a in conditions[kind])
                run = self._runs[(c, kind)]
                on_valid, off_valid = on & valid[j], off & valid[j]
                if not run.active and not on_valid.any():
                    continue
                on_l, off_l, value_l = on.tolist(), off.tolist(), value.tolist()
                k = 0
                while k < n_frames:
                    if run.active:
                        # the frames that only extend the run (a clipping sensor
                        # during an overload) in one go
                        k = run.coast(on_valid, off_valid, ends, value, k)
                    else:
                        # an idle run ignores the frames before the next "on" one
                        later = np.flatnonzero(on_valid[k:])
                        k = k + int(later[0]) if later.size else n_frames
                    if k >= n_frames:
                        break
                    if valid[j, k]:
                        tr = run.step(on_l[k], off_l[k], start_ns[k], end_ns[k], value_l[k])
                        if tr is not None:
                            transitions.append((k, j, order, c, kind, tr))
                    k += 1
        transitions.sort(key=lambda t: t[:3])
        for _, _, _, c, kind, tr in transitions:
            if isinstance(tr, RunConfirmed):
                self._ids[(c, kind)] = self._new_id()
                started.append(self._event(c, kind, tr.start_ns, None, tr.extreme))
            else:
                ended.append(self._event(c, kind, tr.start_ns, tr.end_ns, tr.extreme))

    def _missing_samples(
        self,
        x: NDArray[np.float64],
        t0_ns: int,
        fs_hz: float,
        ended: list[Event],
        started: list[Event],
    ) -> None:
        self._nan_open = False
        min_samples = max(1, int(np.ceil(self._nan_min_s * fs_hz)))
        scale = NS_PER_S / fs_hz
        n = x.shape[1]
        for c in range(len(self.channels)):
            isnan = np.isnan(x[c])
            if self._nan_run[c] > 0 and (n == 0 or not isnan[0]):
                # the run carried over from the previous block ended at its last sample
                if self._nan_announced[c]:
                    ended.append(self._event(
                        c, "missing_samples", int(self._nan_start_ns[c]), t0_ns,
                        float(self._nan_run[c]),
                    ))
                self._nan_run[c] = 0
                self._nan_announced[c] = False
            if not isnan.any():
                continue
            # runs as [start, stop) sample indices, the first one possibly carried over
            padded = np.concatenate([[False], isnan, [False]])
            edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
            runs = edges.reshape(-1, 2)
            for a, b in runs:
                carried = a == 0 and self._nan_run[c] > 0
                length = int(b - a) + (int(self._nan_run[c]) if carried else 0)
                start = int(self._nan_start_ns[c]) if carried else t0_ns + round(a * scale)
                stop_ns = t0_ns + round(b * scale)
                open_run = b == n
                if length >= min_samples and not self._nan_announced[c]:
                    self._nan_announced[c] = True
                    self._ids[(c, "missing_samples")] = self._new_id()
                    if open_run:
                        started.append(self._event(c, "missing_samples", start, None,
                                                   float(length)))
                if open_run:
                    self._nan_run[c] = length
                    self._nan_start_ns[c] = start
                    self._nan_last_ns[c] = stop_ns
                    self._nan_open = True
                else:
                    if self._nan_announced[c]:
                        ended.append(self._event(c, "missing_samples", start, stop_ns,
                                                 float(length)))
                    self._nan_run[c] = 0
                    self._nan_announced[c] = False

    def _event(
        self,
        c: int,
        kind: str,
        start_ns: int,
        end_ns: int | None,
        value: float,
        open_ended: bool = False,
    ) -> Event:
        ch = self.channels[c]
        details: dict[str, float | str | int | bool] = {
            "event_id": self._ids.get((c, kind), 0),
            "fault": kind,
            "quantity": str(ch.quantity),
        }
        key = {
            "stuck": f"stuck_value_{ch.unit.lower()}",
            "clipping": "clipped_samples_max_per_half_cycle",
            "dc_offset": f"dc_offset_{ch.unit.lower()}",
            "missing_samples": "missing_samples",
        }[kind]
        details[key] = int(value) if kind in ("clipping", "missing_samples") else value
        if ch.full_scale is not None:
            details[f"full_scale_{ch.unit.lower()}"] = ch.full_scale
        if open_ended:
            details["open_ended"] = True
        return Event(
            type=EventType.SENSOR_FAULT,
            start_ns=start_ns,
            duration_s=None if end_ns is None else (end_ns - start_ns) / NS_PER_S,
            phases=(self.phases[c],),
            severity=Severity.WARNING,
            channel=ch.id,
            details=details,
        )

    def close(self) -> list[Event]:
        """End faults in progress (end of stream or gap)."""
        out = []
        for (c, kind), run in self._runs.items():
            tr = run.close()
            if tr is not None:
                out.append(self._event(c, kind, tr.start_ns, tr.end_ns, tr.extreme, True))
        for c in range(len(self.channels)):
            if self._nan_announced[c]:
                out.append(self._event(
                    c, "missing_samples", int(self._nan_start_ns[c]), int(self._nan_last_ns[c]),
                    float(self._nan_run[c]), True,
                ))
            self._nan_run[c] = 0
            self._nan_announced[c] = False
        self._nan_open = False
        self._busy.clear()
        self.reset_stream()
        return out


@numba.njit(cache=True)
def _extremes(chunk: NDArray[np.float64]) -> tuple[float, float]:
    """Largest and smallest value, NaN ignored; (-inf, inf) when there is none. Four
    running extremes at a time: the comparisons of one do not wait for the other."""
    t0 = t1 = t2 = t3 = -np.inf
    b0 = b1 = b2 = b3 = np.inf
    n4 = chunk.size - chunk.size % 4
    for i in range(0, n4, 4):
        v0, v1, v2, v3 = chunk[i], chunk[i + 1], chunk[i + 2], chunk[i + 3]
        t0, b0 = (v0 if v0 > t0 else t0), (v0 if v0 < b0 else b0)
        t1, b1 = (v1 if v1 > t1 else t1), (v1 if v1 < b1 else b1)
        t2, b2 = (v2 if v2 > t2 else t2), (v2 if v2 < b2 else b2)
        t3, b3 = (v3 if v3 > t3 else t3), (v3 if v3 < b3 else b3)
    for i in range(n4, chunk.size):
        v0 = chunk[i]
        t0, b0 = (v0 if v0 > t0 else t0), (v0 if v0 < b0 else b0)
    return max(max(t0, t1), max(t2, t3)), min(min(b0, b1), min(b2, b3))


@numba.njit(cache=True, fastmath={"reassoc", "nsz"})
def _screen(
    data: NDArray[np.float64],
    ends: NDArray[np.int64],
    cycle: int,
    tol: NDArray[np.float64],
    full_scale: NDArray[np.float64],
    dc_peak: NDArray[np.float64],
    dc_sum: NDArray[np.float64],
    hot: NDArray[np.bool_],
) -> None:
    """:meth:`SensorFaultDetector._may_start`: ``hot[r]`` set where row ``r`` of
    ``data[:, ends[0] - cycle:ends[-1]]`` has a whole chunk of ``ceil(cycle / 2)``
    samples within ``tol`` and of one sign, a value at or beyond ``full_scale``, or,
    when its peak exceeds ``dc_peak``, a one-cycle window ending at one of ``ends``
    whose sum is not within ``dc_sum`` (in any order: the screen's factor of two
    covers the rounding)."""
    lo, hi = ends[0] - cycle, ends[-1]
    size = (cycle + 1) // 2
    whole = (hi - lo) // size  # the rest is in no window without a whole chunk
    for r in range(data.shape[0]):
        region = data[r, lo:hi]
        peak = -np.inf
        for c in range(0, hi - lo, size):
            top, bottom = _extremes(region[c:c + size])
            if top < bottom:
                continue  # only missing samples
            if c < whole * size and top - bottom <= tol[r] and (bottom > 0.0 or top < 0.0):
                hot[r] = True
            peak = max(peak, top, -bottom)
        if peak >= full_scale[r]:
            hot[r] = True
        if hot[r] or not peak > dc_peak[r]:
            continue
        for e in ends:
            # NaN (a missing sample in the window) keeps the channel in the check
            if not abs(region[e - cycle - lo:e - lo].sum()) <= dc_sum[r]:
                hot[r] = True
                break


@numba.njit(cache=True)
def _frame_stats(
    data: NDArray[np.float64],
    bounds: NDArray[np.int64],
    cycle: int,
    full_scale: NDArray[np.float64],
    valid: NDArray[np.bool_],
    ptp: NDArray[np.float64],
    mean: NDArray[np.float64],
    ac_rms: NDArray[np.float64],
    clipped: NDArray[np.int64],
) -> None:
    """For every row of ``data`` and frame ``bounds[k] = (i0, i1)``: whether the cycle
    before ``i1`` has no missing sample, its peak-to-peak, mean and RMS about the mean
    (left as they are when it has one), and the samples of the frame at or beyond
    ``full_scale`` of the row."""
    for r in range(data.shape[0]):
        row = data[r]
        for k in range(bounds.shape[0]):
            i0, i1 = bounds[k, 0], bounds[k, 1]
            over = 0
            for v in row[i0:i1]:
                over += abs(v) >= full_scale[r]  # a missing sample is not clipped
            clipped[r, k] = over
            window = row[i1 - cycle:i1]
            valid[r, k] = not np.isnan(window).any()
            if not valid[r, k]:
                continue
            total = window.sum()
            m = total / cycle
            ptp[r, k] = window.max() - window.min()
            mean[r, k] = m
            ac_rms[r, k] = math.sqrt(((window - m) ** 2).sum() / cycle)
