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
from numpy.typing import NDArray

from collector.model import NS_PER_S, ChannelInfo, Event, EventType, Quantity, Severity

from .frames import FrameCutter
from .persistence import RunConfirmed, RunEnded, SustainedRun

_KINDS = ("stuck", "clipping", "dc_offset")


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
        self._cutter: FrameCutter | None = None
        self._fs_hz = 0.0

    def reset_stream(self) -> None:
        self._cutter = None

    def process(
        self, x: NDArray[np.float64], t0_ns: int, fs_hz: float, f_hz: float
    ) -> tuple[list[Event], list[Event]]:
        """Feed one block (n_channels, n); returns (ended, started) events."""
        ended: list[Event] = []
        started: list[Event] = []
        self._missing_samples(x, t0_ns, fs_hz, ended, started)
        period = fs_hz / f_hz
        if self._cutter is None or fs_hz != self._fs_hz:
            self._cutter = FrameCutter(len(self.channels), int(np.ceil(period)) + 1)
            self._fs_hz = fs_hz
        frames = self._cutter.push(x, t0_ns, fs_hz, 0.5 * period)
        cycle = round(period)
        for k in range(frames.bounds.shape[0]):
            i0, i1 = (int(v) for v in frames.bounds[k])
            if i1 - cycle < 0:
                continue  # not a full cycle of history yet
            seg = frames.data[:, i1 - cycle:i1]
            half = frames.data[:, i0:i1]
            if np.isnan(seg).any(axis=1).all():
                continue
            self._frame(seg, half, int(frames.start_ns[k]), int(frames.end_ns[k]),
                        ended, started)
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

    def _frame(
        self,
        seg: NDArray[np.float64],
        half: NDArray[np.float64],
        start_ns: int,
        end_ns: int,
        ended: list[Event],
        started: list[Event],
    ) -> None:
        s = self.settings
        valid = np.asarray(~np.isnan(seg).any(axis=1), dtype=bool)
        safe = np.where(np.isnan(seg), 0.0, seg)
        ptp = safe.max(axis=1) - safe.min(axis=1)
        mean = safe.mean(axis=1)
        ac_rms = np.sqrt(np.mean((safe - mean[:, None]) ** 2, axis=1))
        flat: NDArray[np.bool_] = valid & (ptp <= self._tol)
        at_zero = flat & (np.abs(mean) <= np.maximum(self._tol, 1e-12))
        clipped = np.sum(np.abs(np.where(np.isnan(half), 0.0, half)) >= self._fs[:, None], axis=1)
        for c in range(len(self.channels)):
            if not valid[c]:
                continue
            conditions: dict[str, tuple[bool, bool, float]] = {
                "stuck": (bool(flat[c] and not at_zero[c]), not bool(flat[c]), float(mean[c])),
                "clipping": (
                    int(clipped[c]) >= s.clipping_min_samples, int(clipped[c]) == 0,
                    float(clipped[c]),
                ),
            }
            if np.isfinite(self._fs[c]):
                limit = s.dc_offset_pct / 100.0 * self._fs[c]
                offset = abs(float(mean[c]))
                need_ac = 0.0 if self._is_voltage[c] else float(ac_rms[c])
                conditions["dc_offset"] = (
                    offset > limit and offset > need_ac, offset <= 0.8 * limit, offset
                )
            for kind, (on, off, value) in conditions.items():
                tr = self._runs[(c, kind)].step(on, off, start_ns, end_ns, value)
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
        self.reset_stream()
        return out
