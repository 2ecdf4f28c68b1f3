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

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S, Event, EventType, Severity

from .frames import FrameCutter


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


def dwell_fraction(seg: NDArray[np.float64], near_zero_fraction: float) -> NDArray[np.float64]:
    """Share of each row's samples with ``|i|`` below ``near_zero_fraction`` of its peak.

    Parameters
    ----------
    seg : NDArray[np.float64]
        Half-cycle segments, shape (n_channels, L) [A].
    near_zero_fraction : float
        Fraction of the segment's peak that counts as "not conducting" [-].

    Returns
    -------
    NDArray[np.float64]
        Shape (n_channels,), in [0, 1]; 1 for an all-zero segment.
    """
    mag = np.abs(seg)
    peak = mag.max(axis=1, keepdims=True)
    out: NDArray[np.float64] = np.mean(mag <= near_zero_fraction * peak, axis=1)
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
    seg = data[i0:i1]
    rms = float(np.sqrt(np.mean(seg * seg)))
    first = i0 - period_samples - max_shift
    if seg.size < 2 or rms == 0.0 or first < 0:
        return None
    if np.isnan(data[int(np.floor(first)):i1]).any():
        return None
    shifts = np.arange(-max_shift, max_shift + 1e-9, _SHIFT_STEP_SAMPLES)
    pos = (np.arange(i0, i1, dtype=np.float64) - period_samples)[None, :] + shifts[:, None]
    j = np.floor(pos).astype(np.int64)
    u = pos - j
    prev = data[j] * (1.0 - u) + data[j + 1] * u
    prev_rms = np.sqrt(np.mean(prev * prev, axis=1))
    ok = prev_rms > 0
    if not ok.any():
        return 1.0
    diff = seg[None, :] / rms - prev[ok] / prev_rms[ok, None]
    return float(np.sqrt(np.mean(diff * diff, axis=1)).min())


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
        self, x_a: NDArray[np.float64], t0_ns: int, fs_hz: float, f_hz: float
    ) -> tuple[list[Event], list[Event]]:
        """Feed one block of the channels' samples (n_channels, n) [A]."""
        s = self.settings
        period = fs_hz / f_hz
        ended: list[Event] = []
        started: list[Event] = []
        if self._cutter is None or fs_hz != self._fs_hz:
            history = int(np.ceil(period + s.max_shift_samples)) + 2
            self._cutter = FrameCutter(len(self.channel_ids), history)
            self._fs_hz = fs_hz
        frames = self._cutter.push(x_a, t0_ns, fs_hz, 0.5 * period)
        window_ns = round(s.window_s * NS_PER_S)
        for k in range(frames.bounds.shape[0]):
            i0, i1 = (int(v) for v in frames.bounds[k])
            f_start, f_end = int(frames.start_ns[k]), int(frames.end_ns[k])
            seg = frames.data[:, i0:i1]
            rms = np.sqrt(np.mean(seg * seg, axis=1))  # NaN rows stay NaN: never arc-like
            dwell = dwell_fraction(seg, s.near_zero_fraction)
            # the shape comparison is the costly part: only for candidates
            candidates = (rms >= s.min_current_a) & (dwell >= s.dwell_min_fraction)
            for c, st in enumerate(self._states):
                arc_like = False
                if candidates[c]:
                    variation = cycle_variation(
                        frames.data[c], i0, i1, period, s.max_shift_samples
                    )
                    arc_like = variation is not None and variation >= s.variation_min
                if arc_like:
                    st.recent.append((f_start, f_end))
                    if st.active:
                        st.last_arc_ns = f_end
                        st.arc_half_cycles += 1
                        st.current_max_a = max(st.current_max_a, float(rms[c]))
                while st.recent and st.recent[0][1] <= f_end - window_ns:
                    st.recent.popleft()
                if not st.active and len(st.recent) >= s.min_half_cycles:
                    st.active, st.event_id = True, self._new_id()
                    st.start_ns, st.last_arc_ns = st.recent[0][0], st.recent[-1][1]
                    st.arc_half_cycles = len(st.recent)
                    st.current_max_a = float(rms[c])
                    started.append(self._event(c, None))
                elif st.active and f_end - st.last_arc_ns >= window_ns:
                    ended.append(self._event(c, st.last_arc_ns))
                    st.active = False
        ended_ids = {e.details["event_id"] for e in ended}
        return ended, [e for e in started if e.details["event_id"] not in ended_ids]

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
