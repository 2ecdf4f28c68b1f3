"""IEC 61000-4-30 polyphase rules for threshold events on Urms(1/2) values.

Dips and swells (§5.4.2.2, §5.4.3.2): the event begins when the value of at least
one channel crosses the threshold and ends when the values of *all* measured
channels are back beyond threshold + hysteresis. Interruptions (§5.4.4): the event
begins when *all* channels are below the threshold and ends when *any* channel is
at or above threshold + hysteresis. One event is reported for all channels, with the
channels involved and the extreme value over all channels.

Each channel carries a hysteretic flag (inside after crossing the threshold, outside
again only beyond threshold + hysteresis), so a value hovering around the threshold
does not chatter.

Timing. Each Urms(1/2) value is time-stamped at the centre of its one-cycle window.
Detection follows the threshold rules above, but the *time* of a start or end is the
instant of the transition that caused the crossing: the window's mean square is
linear in how much of the window overlaps a step change, so across a step it ramps
over exactly one cycle between the levels before and after, and reaches the mid
level when the window is centred on the step. The crossing instant is therefore
taken where the squared value passes midway between the level 1.5 cycles before and
1 cycle after the crossing (linear interpolation on the half-cycle grid), which is
unbiased for any depth. A plain threshold crossing would be biased by up to half a
cycle at each end (for an interruption, whose 5 % threshold is only reached once the
whole window is inside it, the duration would come out a full cycle short). When the
transition is too gradual to resolve this way, the threshold crossing itself is
used. Starts are announced at once with the threshold-crossing time; the refined
start and end are known one cycle after the end, which is when ``Ended`` is emitted.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

_BEFORE = 3  # values (half cycles) before a crossing that give the level before it
_AFTER = 2  # values after a crossing that give the level after it
HISTORY = _BEFORE + _AFTER + 1  # values a tracker keeps
# A transition is resolved when its levels before/after differ by at least this
# share of the larger mean square; otherwise the threshold crossing is kept.
_MIN_STEP_FRACTION = 0.02


class Direction(StrEnum):
    """Side of the threshold the event lies on."""

    BELOW = "below"  # dips, interruptions
    ABOVE = "above"  # swells


class Rule(StrEnum):
    """How channel flags combine into one polyphase event."""

    ANY_BEGINS = "any_begins"  # dips, swells: any channel begins, all must end
    ALL_BEGIN = "all_begin"  # interruptions: all channels begin, any one ends


@dataclass(frozen=True, slots=True)
class Began:
    """A polyphase event began (time of the threshold crossing, not yet refined)."""

    seq: int
    start_ns: int
    channel: int


@dataclass(frozen=True, slots=True)
class Ended:
    """A polyphase event ended; emitted one cycle after its end, with refined times."""

    seq: int
    start_ns: int
    end_ns: int
    first_channel: int
    channels: tuple[int, ...]  # channels whose flag was set during the event, in order
    extreme_pct: float  # lowest (BELOW) or highest (ABOVE) value of any channel [%]
    extreme_channel: int
    open_ended: bool = False


def crossing_ns(
    u_prev: float, t_prev_ns: int | None, u_now: float, t_now_ns: int, level: float
) -> int:
    """Instant at which the RMS passes ``level`` between two values (squared interpolation)."""
    if t_prev_ns is None or not math.isfinite(u_prev):
        return t_now_ns
    a, b, lv = u_prev * u_prev, u_now * u_now, level * level
    if a == b:
        return t_now_ns
    frac = min(max((a - lv) / (a - b), 0.0), 1.0)
    return t_prev_ns + round(frac * (t_now_ns - t_prev_ns))


def transition_ns(times_ns: Sequence[int], u: Sequence[float]) -> int | None:
    """Instant at which the squared values pass midway between the first and the last.

    ``times_ns``/``u`` span a transition: ``_BEFORE`` values before the crossing, the
    crossing value, ``_AFTER`` after. None when the values are missing, do not
    change enough, or are not monotonic (then the transition is not one step).
    """
    sq = np.square(np.asarray(u, dtype=np.float64))
    if sq.size < 2 or not np.all(np.isfinite(sq)):
        return None
    first, last = float(sq[0]), float(sq[-1])
    if abs(first - last) < _MIN_STEP_FRACTION * max(first, last):
        return None
    steps = np.diff(sq) * np.sign(last - first)
    if np.any(steps < -_MIN_STEP_FRACTION * max(first, last)):
        return None
    mid = 0.5 * (first + last)
    for j in range(sq.size - 1):
        a, b = float(sq[j]), float(sq[j + 1])
        if (a - mid) * (b - mid) <= 0 and a != b:
            frac = (a - mid) / (a - b)
            return int(times_ns[j]) + round(frac * (int(times_ns[j + 1]) - int(times_ns[j])))
    return None


class RecentValues:
    """The last :data:`HISTORY` values fed to a group of trackers, with their times.

    Feeding a tracker value by value costs a Python loop per half cycle. While no
    value comes near a threshold the loop changes nothing but the tracker's
    history, so a caller may skip a quiet tracker (:attr:`PolyphaseTracker.quiet`)
    for values none of which is beyond its threshold, push the values here instead,
    and call :meth:`PolyphaseTracker.catch_up` before it feeds the tracker again.
    """

    def __init__(self, n_rows: int) -> None:
        self.k_last = -1  # index of the latest value pushed
        self.times_ns: list[int] = []
        self.values: NDArray[np.float64] = np.zeros((n_rows, 0))

    def push(self, values: NDArray[np.float64], times_ns: NDArray[np.int64]) -> None:
        """Record values (n_rows, k) fed (or skipped) at ``times_ns``; not copied: the
        caller must not modify them later."""
        k = values.shape[1]
        if k == 0:
            return
        self.k_last += k
        if k >= HISTORY:
            self.values = values[:, -HISTORY:]
            self.times_ns = times_ns[-HISTORY:].tolist()
        else:
            self.values = np.concatenate([self.values, values], axis=1)[:, -HISTORY:]
            self.times_ns = (self.times_ns + times_ns.tolist())[-HISTORY:]

    def derived(self, values: NDArray[np.float64]) -> RecentValues:
        """The same steps and times with other values (computed from these)."""
        out = RecentValues(values.shape[0])
        out.k_last, out.times_ns, out.values = self.k_last, self.times_ns, values
        return out

    def clear(self) -> None:
        """Forget the values (a gap: trackers forget theirs too)."""
        self.values = self.values[:, :0]
        self.times_ns = []


@dataclass
class _Crossing:
    """A channel's threshold crossing at step ``k``; refined once ``k + _AFTER`` exists."""

    channel: int
    k: int
    time_ns: int
    resolved: bool = False


@dataclass
class _Record:
    seq: int
    first_channel: int
    starts: list[_Crossing]  # crossings that began the event (earliest/latest counts)
    ends: list[_Crossing] = field(default_factory=list)
    involved: list[int] = field(default_factory=list)
    extreme_pct: float = float("nan")
    extreme_channel: int = 0
    last_t_ns: int = 0


@dataclass
class PolyphaseTracker:
    """Streaming state of one polyphase threshold event kind (dip, swell or interruption).

    Values are in % of each channel's reference. ``enter_pct`` is the threshold,
    ``leave_pct`` the threshold with the hysteresis applied (above it for BELOW).
    """

    n_channels: int
    direction: Direction
    rule: Rule
    enter_pct: float
    leave_pct: float
    _inside: list[bool] = field(init=False)  # per channel: beyond the threshold
    _hist_t: deque[int] = field(init=False)
    _hist_u: deque[NDArray[np.float64]] = field(init=False)
    _k: int = -1  # index of the latest step
    _open: _Record | None = None
    _closing: list[_Record] = field(default_factory=list)
    _seq: int = 0

    def __post_init__(self) -> None:
        if self.n_channels < 1:
            raise ValueError(f"n_channels: must be >= 1, got {self.n_channels}")
        below = self.direction is Direction.BELOW
        if (self.leave_pct < self.enter_pct) if below else (self.leave_pct > self.enter_pct):
            raise ValueError(
                f"leave_pct: must be on the far side of enter_pct={self.enter_pct} "
                f"for {self.direction}, got {self.leave_pct}"
            )
        self._inside = [False] * self.n_channels
        self._any_inside = False  # any(_inside), kept for quiet
        self._hist_t = deque(maxlen=HISTORY)
        self._hist_u = deque(maxlen=HISTORY)

    @property
    def active(self) -> bool:
        return self._open is not None

    @property
    def inside(self) -> NDArray[np.bool_]:
        """Per channel: beyond the threshold (and not yet back past the hysteresis)."""
        return np.array(self._inside, dtype=bool)

    @property
    def active_seq(self) -> int | None:
        return None if self._open is None else self._open.seq

    @property
    def extreme_pct(self) -> float:
        return float("nan") if self._open is None else self._open.extreme_pct

    @property
    def involved(self) -> tuple[int, ...]:
        return () if self._open is None else tuple(self._open.involved)

    @property
    def first_channel(self) -> int:
        return 0 if self._open is None else self._open.first_channel

    @property
    def quiet(self) -> bool:
        """No event open or awaiting its end, no channel beyond its threshold: values
        none of which is beyond the threshold would change nothing but the history."""
        return self._open is None and not self._closing and not self._any_inside

    def beyond(self, u_pct: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Elementwise: would this value take a channel beyond the threshold? (NaN: no.)"""
        below = self.direction is Direction.BELOW
        out: NDArray[np.bool_] = u_pct < self.enter_pct if below else u_pct > self.enter_pct
        return out

    def catch_up(self, recent: RecentValues, rows: slice | None = None) -> None:
        """Take the history from ``recent`` (rows ``rows``) if values were skipped.

        Only for a tracker that was :attr:`quiet` while it was skipped: stepping it
        through those values would have changed nothing else.
        """
        if self._k == recent.k_last:
            return
        if not self.quiet:
            raise RuntimeError("catch_up: a tracker in progress was skipped")
        values = recent.values if rows is None else recent.values[rows]
        if values.shape[0] != self.n_channels:
            raise ValueError(
                f"recent: expected {self.n_channels} rows, got {values.shape[0]}"
            )
        self._k = recent.k_last
        self._hist_t.clear()
        self._hist_u.clear()
        for j, t in enumerate(recent.times_ns):
            self._hist_t.append(t)
            self._hist_u.append(values[:, j].copy())

    def _beyond(self, u: float) -> bool:
        return u < self.enter_pct if self.direction is Direction.BELOW else u > self.enter_pct

    def _back(self, u: float) -> bool:
        return u >= self.leave_pct if self.direction is Direction.BELOW else u <= self.leave_pct

    def _more_extreme(self, u: float, than: float) -> bool:
        return u < than if self.direction is Direction.BELOW else u > than

    def reset_interpolation(self) -> None:
        """Forget the previous values (after a gap in the data)."""
        self._hist_t.clear()
        self._hist_u.clear()

    def _refine(self, crossing: _Crossing, final: bool = False) -> None:
        """Replace the threshold-crossing time by the transition instant when resolvable."""
        if crossing.resolved:
            return
        first_k = self._k - len(self._hist_t) + 1
        if self._k < crossing.k + _AFTER and not final:
            return
        lo = max(crossing.k - _BEFORE, first_k)
        hi = min(crossing.k + _AFTER, self._k)
        crossing.resolved = True
        if crossing.k - lo < 1 or hi - crossing.k < 1:
            return  # not enough values around it: keep the threshold crossing
        times = [self._hist_t[j - first_k] for j in range(lo, hi + 1)]
        values = [float(self._hist_u[j - first_k][crossing.channel]) for j in range(lo, hi + 1)]
        refined = transition_ns(times, values)
        if refined is not None:
            crossing.time_ns = refined

    def _emit(self, rec: _Record, open_ended: bool = False) -> Ended:
        # dips/swells: earliest start, latest end; interruptions: latest start, earliest end
        starts = [c.time_ns for c in rec.starts]
        ends = [c.time_ns for c in rec.ends] or [rec.last_t_ns]
        any_rule = self.rule is Rule.ANY_BEGINS
        start = min(starts) if any_rule else max(starts)
        end = max(ends) if any_rule else min(ends)
        return Ended(
            rec.seq, start, max(end, start), rec.first_channel, tuple(rec.involved),
            rec.extreme_pct, rec.extreme_channel, open_ended,
        )

    def coast_end(self, values: NDArray[np.float64], start: int, stop: int) -> int:
        """The largest ``j <= stop`` such that stepping ``values[:, start:j]`` (channels,
        values) one by one would change nothing but the history, the step count and,
        during an event, its extreme and last time: see :meth:`coast`. ``start``
        when that does not hold for the first value.

        It holds while nothing awaits its end and no event is open or the open one
        has its starting crossings refined already, as long as no value takes a
        channel across its threshold or back past the hysteresis (a missing value
        changes nothing).
        """
        rec = self._open
        if self._closing or stop <= start:
            return start
        if rec is not None and not all(x.resolved for x in rec.starts):
            return start
        seg = values[:, start:stop]
        inside = np.array(self._inside, dtype=bool)[:, None]
        # NaN compares False everywhere: a missing value changes no flag
        if self.direction is Direction.BELOW:
            change = np.where(inside, seg >= self.leave_pct, seg < self.enter_pct)
        else:
            change = np.where(inside, seg <= self.leave_pct, seg > self.enter_pct)
        changed = np.flatnonzero(change.any(axis=0))
        return start + (int(changed[0]) if changed.size else seg.shape[1])

    def coast(
        self, values: NDArray[np.float64], times_ns: Sequence[int], start: int, end: int
    ) -> None:
        """Take ``values[:, start:end]`` at ``times_ns[start:end]`` in one go, ``end``
        from :meth:`coast_end`: what stepping them one by one would do. An event in
        progress (a long sag, an overload) or a quiet stretch then costs a few numpy
        calls per block instead of a Python step per half cycle."""
        if end <= start:
            return
        rec = self._open
        if rec is not None:
            # the extreme as step finds it: the first strictly more extreme value
            # in time order, then channel order
            below = self.direction is Direction.BELOW
            flat = values[:, start:end].T.ravel()
            finite = np.flatnonzero(np.isfinite(flat))
            if finite.size:
                pos = int(finite[np.argmin(flat[finite]) if below else np.argmax(flat[finite])])
                best = float(flat[pos])
                if not math.isfinite(rec.extreme_pct) or (
                    best < rec.extreme_pct if below else best > rec.extreme_pct
                ):
                    rec.extreme_pct, rec.extreme_channel = best, pos % self.n_channels
            rec.last_t_ns = int(times_ns[end - 1])
        for k in range(max(start, end - HISTORY), end):
            self._hist_t.append(int(times_ns[k]))
            self._hist_u.append(np.array(values[:, k], dtype=np.float64))
        self._k += end - start

    def step(self, u_pct: NDArray[np.float64], t_ns: int) -> list[Began | Ended]:
        """Feed one Urms(1/2) value per channel [% of reference] at window centre ``t_ns``."""
        out: list[Began | Ended] = []
        prev_t = self._hist_t[-1] if self._hist_t else None
        # per-channel work in Python floats: the same IEEE arithmetic as numpy scalars,
        # without a numpy call per channel and value
        prev_u = self._hist_u[-1].tolist() if self._hist_u else [math.nan] * self.n_channels
        self._k += 1
        self._hist_t.append(t_ns)
        row = np.array(u_pct, dtype=np.float64)
        self._hist_u.append(row)
        values = row.tolist()
        inside = self._inside
        below = self.direction is Direction.BELOW
        enter, leave = self.enter_pct, self.leave_pct
        entered: list[_Crossing] = []
        left: list[_Crossing] = []
        for c, u in enumerate(values):
            if not math.isfinite(u):
                continue  # a missing value changes nothing
            if not inside[c]:
                if u < enter if below else u > enter:
                    inside[c] = True
                    t = crossing_ns(prev_u[c], prev_t, u, t_ns, enter)
                    entered.append(_Crossing(c, self._k, t))
            elif u >= leave if below else u <= leave:
                inside[c] = False
                t = crossing_ns(prev_u[c], prev_t, u, t_ns, leave)
                left.append(_Crossing(c, self._k, t))
        was_active = self._open is not None
        self._any_inside = any(inside)
        now_active = self._any_inside if self.rule is Rule.ANY_BEGINS else all(inside)
        if now_active and not was_active:
            self._seq += 1
            if self.rule is Rule.ANY_BEGINS:
                first = min(entered, key=lambda x: (x.time_ns, x.channel))
                rec = _Record(self._seq, first.channel, entered)
            else:
                last = max(entered, key=lambda x: (x.time_ns, x.channel), default=None)
                if last is None:  # cannot happen with flags set only by entering
                    last = _Crossing(0, self._k, t_ns, resolved=True)
                rec = _Record(self._seq, last.channel, [last],
                              involved=list(range(self.n_channels)))
            self._open = rec
            out.append(Began(rec.seq, min(x.time_ns for x in rec.starts), rec.first_channel))
        rec_open = self._open
        if rec_open is not None:
            for x in sorted(entered, key=lambda x: (x.time_ns, x.channel)):
                if x.channel not in rec_open.involved:
                    rec_open.involved.append(x.channel)
            for c, u in enumerate(values):
                if math.isfinite(u) and (
                    not math.isfinite(rec_open.extreme_pct)
                    or (u < rec_open.extreme_pct if below else u > rec_open.extreme_pct)
                ):
                    rec_open.extreme_pct, rec_open.extreme_channel = u, c
            rec_open.last_t_ns = t_ns
            for x in rec_open.starts:
                self._refine(x)
        if was_active and not now_active and rec_open is not None:
            rec_open.ends = left
            self._closing.append(rec_open)
            self._open = None
        still: list[_Record] = []
        for rec in self._closing:
            for x in rec.starts + rec.ends:
                self._refine(x)
            if all(x.resolved for x in rec.starts + rec.ends):
                out.append(self._emit(rec))
            else:
                still.append(rec)
        self._closing = still
        return out

    def close(self) -> list[Ended]:
        """End what is in progress where the data stopped (end of stream or gap)."""
        out: list[Ended] = []
        for rec in self._closing:
            for x in rec.starts + rec.ends:
                self._refine(x, final=True)
            out.append(self._emit(rec))
        self._closing = []
        if self._open is not None:
            for x in self._open.starts:
                self._refine(x, final=True)
            out.append(self._emit(self._open, open_ended=True))
            self._open = None
        self._inside = [False] * self.n_channels
        self._any_inside = False
        self.reset_interpolation()
        return out


def channels_label(channels: Sequence[int], names: Sequence[str]) -> tuple[str, ...]:
    """Names of the given channel indices, in index order without duplicates."""
    return tuple(names[c] for c in sorted(set(channels)))
