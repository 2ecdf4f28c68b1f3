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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from collector.events.frames import FrameCutter
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
        self._tol_col = self._tol[:, None]
        self._fs_list = self._fs.tolist()
        self._has_full_scale = np.isfinite(self._fs).tolist()
        self._any_full_scale = bool(np.isfinite(self._fs).any())
        self._dc_rows = np.flatnonzero(np.isfinite(self._fs))
        self._dc_all = self._dc_rows.size == n
        self._dc_limit = settings.dc_offset_pct / 100.0 * self._fs[self._dc_rows]
        self._dc_cycle = 0
        self._dc_screen = np.zeros((self._dc_rows.size, 1))
        self._busy: set[int] = set()  # channels with a run in progress
        self._cutter: FrameCutter | None = None
        self._fs_hz = 0.0

    def reset_stream(self) -> None:
        self._cutter = None

    def process(
        self, x: NDArray[np.float64], t0_ns: int, fs_hz: float, f_hz: float,
        *, has_nan: bool | None = None,
    ) -> tuple[list[Event], list[Event]]:
        """Feed one block (n_channels, n); returns (ended, started) events. ``has_nan``:
        whether ``x`` has a NaN, when the caller knows already."""
        ended: list[Event] = []
        started: list[Event] = []
        if has_nan is None:
            has_nan = bool(np.isnan(x).any())
        if has_nan or self._nan_open:
            self._missing_samples(x, t0_ns, fs_hz, ended, started)
        period = fs_hz / f_hz
        if self._cutter is None or fs_hz != self._fs_hz:
            self._cutter = FrameCutter(len(self.channels), int(np.ceil(period)) + 1)
            self._fs_hz = fs_hz
        frames = self._cutter.push(x, t0_ns, fs_hz, 0.5 * period)
        cycle = round(period)
        bounds = frames.bounds
        full = [k for k, (_, i1) in enumerate(bounds) if i1 - cycle >= 0]  # a cycle of history
        if full:
            # Channels without a run in progress where no run can start in this block
            # have nothing to update: only the others are checked frame by frame.
            hot = self._may_start(frames.data, [bounds[k][1] for k in full], cycle)
            hot[list(self._busy)] = True
            channels = np.flatnonzero(hot)
            if channels.size:
                self._frames(
                    channels, frames.data[channels], [bounds[k] for k in full], cycle,
                    [frames.start_ns[k] for k in full], [frames.end_ns[k] for k in full],
                    ended, started,
                )
                for c in channels.tolist():
                    if any(self._runs[(c, kind)].active for kind in _KINDS):
                        self._busy.add(c)
                    else:
                        self._busy.discard(c)
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    def _may_start(
        self, data: NDArray[np.float64], ends: list[int], cycle: int
    ) -> NDArray[np.bool_]:
        """Per channel: can a stuck, clipping or DC-offset run start in the frames
        ending at ``ends`` (columns of ``data``)? False is certain.

        - stuck needs a one-cycle window with peak-to-peak within the tolerance and
          ``|mean|`` above it, hence every sample of one sign; every window holds a
          whole chunk of ``ceil(cycle / 2)`` samples of the grid below, which then is
          as flat and of one sign;
        - clipping needs a sample at or beyond full scale;
        - a DC offset needs ``|mean|`` of a one-cycle window above its limit.

        Missing samples count as anything (a window with one is skipped anyway).
        """
        lo, hi = ends[0] - cycle, ends[-1]
        region = data[:, lo:hi]
        size = (cycle + 1) // 2
        grid = list(range(0, hi - lo, size))  # and a short chunk of the rest, if any
        top = np.fmax.reduceat(region, grid, axis=1)
        bottom = np.fmin.reduceat(region, grid, axis=1)
        whole = (hi - lo) // size  # the rest is in no window without a whole chunk
        flat = top[:, :whole] - bottom[:, :whole] <= self._tol_col
        hot: NDArray[np.bool_] = np.zeros(region.shape[0], dtype=bool)
        if flat.any():
            signed = (bottom[:, :whole] > 0) | (top[:, :whole] < 0)
            hot = np.asarray((flat & signed).any(axis=1), dtype=bool)
        if self._any_full_scale:
            peak = np.fmax(np.fmax.reduce(top, axis=1), -np.fmin.reduce(bottom, axis=1))
            hot |= peak >= self._fs
        if self._dc_rows.size:
            if cycle != self._dc_cycle:
                # |sum| over a cycle that may exceed the limit: from half of it
                self._dc_cycle = cycle
                self._dc_screen = (_DC_SCREEN_FRACTION * cycle * self._dc_limit)[:, None]
            # one-cycle sums at every frame end: sums between consecutive window
            # edges, accumulated (the last knot is the end of the region)
            knots = sorted({e - lo for e in ends} | {e - cycle - lo for e in ends})
            column = {v: i for i, v in enumerate(knots)}
            rows = region if self._dc_all else region[self._dc_rows]
            prefix = np.zeros((rows.shape[0], len(knots)))
            np.cumsum(np.add.reduceat(rows, knots[:-1], axis=1), axis=1, out=prefix[:, 1:])
            at = prefix[:, [column[e - lo] for e in ends] + [column[e - cycle - lo]
                                                            for e in ends]]
            n = len(ends)
            small = np.abs(at[:, :n] - at[:, n:]) <= self._dc_screen
            # NaN (a missing sample anywhere before) keeps the channel in the check
            hot[self._dc_rows] |= ~small.all(axis=1)
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
        fs = self._fs[channels][:, None]
        windows = sliding_window_view(data, cycle, axis=1)[:, [i1 - cycle for _, i1 in bounds]]
        missing = np.isnan(windows)
        valid = np.asarray(~missing.any(axis=2), dtype=bool)
        safe = np.where(missing, 0.0, windows)
        ptp = safe.max(axis=2) - safe.min(axis=2)
        mean = safe.mean(axis=2)
        ac_rms = np.sqrt(np.mean((safe - mean[:, :, None]) ** 2, axis=2))
        flat = valid & (ptp <= tol)
        at_zero = flat & (np.abs(mean) <= np.maximum(tol, 1e-12))
        over = (np.abs(np.where(np.isnan(data), 0.0, data)) >= fs).astype(np.int64)
        edges = [i0 for i0, _ in bounds]
        if bounds[-1][1] < data.shape[1]:
            edges.append(bounds[-1][1])
        clipped = np.add.reduceat(over, edges, axis=1)[:, :len(bounds)].tolist()
        valid_l, flat_l, at_zero_l = valid.tolist(), flat.tolist(), at_zero.tolist()
        mean_l, ac_l = mean.tolist(), ac_rms.tolist()
        for k in range(len(bounds)):
            for j, c in enumerate(channels.tolist()):
                if not valid_l[j][k]:
                    continue
                conditions: dict[str, tuple[bool, bool, float]] = {
                    "stuck": (flat_l[j][k] and not at_zero_l[j][k], not flat_l[j][k],
                              mean_l[j][k]),
                    "clipping": (
                        clipped[j][k] >= s.clipping_min_samples, clipped[j][k] == 0,
                        float(clipped[j][k]),
                    ),
                }
                if self._has_full_scale[c]:
                    limit = s.dc_offset_pct / 100.0 * self._fs_list[c]
                    offset = abs(mean_l[j][k])
                    need_ac = 0.0 if self._is_voltage[c] else ac_l[j][k]
                    conditions["dc_offset"] = (
                        offset > limit and offset > need_ac, offset <= 0.8 * limit, offset
                    )
                for kind, (on, off, value) in conditions.items():
                    tr = self._runs[(c, kind)].step(on, off, start_ns[k], end_ns[k], value)
                    if isinstance(tr, RunConfirmed):
                        self._ids[(c, kind)] = self._new_id()
                        started.append(self._event(c, kind, tr.start_ns, None, tr.extreme))
                    elif isinstance(tr, RunEnded):
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
