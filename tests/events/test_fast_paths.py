"""The building blocks of the fast paths against the code before the speed work.

Each fast path must give what the value-by-value code gave: the oracle is the frozen
copy in ``tests/events/reference_engine``. Inputs are streamed in chunks of random
sizes, with missing samples and frequency changes where the function takes them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from collector.events.arc import _cycle_variations
from collector.events.frames import FrameCutter
from collector.events.frequency import positive_zero_crossings_ns
from collector.events.half_cycle_rms import half_cycle_rms
from collector.events.overcurrent import OvercurrentDetector, OvercurrentRule
from collector.events.persistence import Extreme, RunConfirmed, RunEnded, SustainedRun
from collector.events.polyphase import Direction, PolyphaseTracker, RecentValues, Rule
from collector.events.sensor import SensorFaultDetector, SensorSettings
from collector.model import NS_PER_S, ChannelInfo, Event, Quantity, Severity, as_float_rows

from .reference_engine import arc as ref_arc
from .reference_engine import frames as ref_frames
from .reference_engine import frequency as ref_frequency
from .reference_engine import half_cycle_rms as ref_rms
from .reference_engine import polyphase as ref_polyphase
from .signals import T0_NS, sine, time_axis

FS = 6400.0


def _chunks(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.choice([1, 3, 50, 64, 127, 640, 2000]))))
    return list(itertools.pairwise(cuts))


def _mains(rng: np.random.Generator, seconds: float, n_rows: int = 3) -> np.ndarray:
    t = time_axis(FS, seconds)
    rows = [sine(t, 50.02, 230.0, 0.3 + k) + sine(t, 250.1, 9.0, 1.0 + k)
            + rng.normal(0, 0.5, t.size) for k in range(n_rows)]
    x = np.stack(rows)
    x[:, round(0.8 * FS):round(1.1 * FS)] *= 0.03  # an interruption-like stretch
    return x


def test_frame_cutter_gives_the_same_frames() -> None:
    rng = np.random.default_rng(1)
    x = _mains(rng, 2.0)
    new, old = FrameCutter(3, 131), ref_frames.FrameCutter(3, 131)
    for a, b in _chunks(rng, x.shape[1]):
        frame = 0.5 * FS / float(rng.normal(50.0, 0.05))  # fractional, changing
        t0 = T0_NS + round(a * NS_PER_S / FS)
        got = new.push(x[:, a:b], t0, FS, frame)
        want = old.push(x[:, a:b], t0, FS, frame)
        # the reference lists each frame's bounds and times; the cutter gives edges
        edges, times = got.edges.tolist(), got.times_ns().tolist()
        assert list(itertools.pairwise(edges)) == [tuple(v) for v in want.bounds.tolist()]
        assert times[:-1] == want.start_ns.tolist()
        assert times[1:] == want.end_ns.tolist()
        np.testing.assert_array_equal(got.data, want.data)


def test_frames_built_in_room_left_before_the_samples_are_the_same_frames() -> None:
    # the pipeline copies a held block after room for the cutter's history: the
    # frames are then that array, with the history written into the room
    rng = np.random.default_rng(2)
    x = _mains(rng, 2.0)
    copying, in_place = FrameCutter(3, 131), FrameCutter(3, 131)
    shared = 0
    chunks = list(_chunks(rng, x.shape[1]))
    for a, b in chunks:
        frame = 0.5 * FS / float(rng.normal(50.0, 0.05))
        t0 = T0_NS + round(a * NS_PER_S / FS)
        want = copying.push(x[:, a:b], t0, FS, frame)
        room = in_place.room_wanted
        out = np.full((3, room + b - a), np.nan)
        out[:, room:] = x[:, a:b]
        got = in_place.push(out[:, room:], t0, FS, frame)
        shared += got.data is out
        np.testing.assert_array_equal(got.data, want.data)
        assert got.edges.tolist() == want.edges.tolist()
        assert got.history == want.history
    assert shared == len(chunks) > 10  # every push used the room, none copied
    # a view without exactly that room is copied as before
    cutter = FrameCutter(3, 131)
    cutter.push(x[:, :500], T0_NS, FS, 64.0)
    wider = np.zeros((3, cutter.room_wanted + 1 + 300))
    got = cutter.push(wider[:, cutter.room_wanted + 1:], T0_NS, FS, 64.0)
    assert got.data is not wider
    assert not np.shares_memory(got.data, wider)


def test_float_rows_keep_a_column_slice_and_convert_the_rest() -> None:
    base = np.arange(30, dtype=np.float64).reshape(3, 10)
    assert as_float_rows(base[:, 2:]) is not None
    assert np.shares_memory(as_float_rows(base[:, 2:]), base)
    for other in (base.astype(np.float32)[:, 2:], np.asfortranarray(base), base[:, ::2]):
        got = as_float_rows(other)
        assert got.dtype == np.float64
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, np.asarray(other, dtype=np.float64))


@pytest.mark.parametrize("with_nan", [False, True])
def test_zero_crossings_are_the_same_instants(with_nan: bool) -> None:
    rng = np.random.default_rng(2)
    x = _mains(rng, 3.0, 1)[0]
    if with_nan:
        x[5000:5040] = np.nan
    new_state = old_state = None
    got: list[int] = []
    want: list[int] = []
    for a, b in _chunks(rng, x.size):
        t0 = T0_NS + round(a * NS_PER_S / FS)
        chunk = x[a:b]
        hint = None if with_nan else False
        g, new_state = positive_zero_crossings_ns(
            chunk, t0, FS, 50.0, 30.0, new_state, has_nan=hint
        )
        w, old_state = ref_frequency.positive_zero_crossings_ns(
            chunk, t0, FS, 50.0, 30.0, old_state
        )
        got += g.tolist()
        want += w.tolist()
        assert new_state.armed == old_state.armed
    assert len(want) > 100
    assert got == want


def test_half_cycle_rms_agrees_with_the_running_sum_version() -> None:
    rng = np.random.default_rng(3)
    x = _mains(rng, 2.0)
    x[1, 3000:3003] = np.nan
    new_state = old_state = None
    got_v, want_v, got_t, want_t = [], [], [], []
    for a, b in _chunks(rng, x.shape[1]):
        f = float(rng.normal(50.0, 0.05))
        t0 = T0_NS + round(a * NS_PER_S / FS)
        g, gt, new_state = half_cycle_rms(x[:, a:b], t0, FS, f, new_state)
        w, wt, old_state = ref_rms.half_cycle_rms(x[:, a:b], t0, FS, f, old_state)
        got_v.append(g)
        want_v.append(w)
        got_t += gt.tolist()
        want_t += wt.tolist()
    got, want = np.concatenate(got_v, axis=1), np.concatenate(want_v, axis=1)
    assert got_t == want_t
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(want).any()
    # mean squares agree to the old method's rounding of a running sum of 230-V squares
    np.testing.assert_allclose(got**2, want**2, rtol=1e-11, atol=1e-9, equal_nan=True)


def test_arc_variations_of_many_half_cycles_match_one_at_a_time() -> None:
    rng = np.random.default_rng(4)
    t = time_axis(FS, 0.5)
    i = sine(t, 50.0, 10.0) * (np.abs(np.sin(2 * np.pi * 50 * t)) > 0.3)
    i += rng.normal(0, 0.5, t.size) * (t > 0.25)  # periodic, then not
    i[2500] = np.nan
    period = FS / 50.02
    starts = [s for s in range(150, t.size - 70, 64)]
    for length in (63, 64):
        got = _cycle_variations(i, starts, length, period, 2.0)
        for k, s in enumerate(starts):
            want = ref_arc.cycle_variation(i, s, s + length, period, 2.0)
            if want is None:
                assert np.isnan(got[k])
            else:
                # the earlier samples' interpolation fraction is computed once per
                # shift, not per sample: its rounding differs by ~1e-16 of the sample
                # index, a variation (0 periodic .. 1.4 unrelated) by ~1e-14 where
                # the shapes nearly cancel
                assert got[k] == pytest.approx(want, rel=1e-12, abs=1e-12)


def _levels(rng: np.random.Generator, n: int) -> np.ndarray:
    u = 100.0 + rng.normal(0, 1.0, (3, n))
    for _ in range(6):  # dips of one or all channels, with and without hysteresis chatter
        a = int(rng.integers(0, n - 40))
        rows = [int(rng.integers(0, 3))] if rng.random() < 0.5 else [0, 1, 2]
        u[rows, a:a + int(rng.integers(1, 40))] = float(rng.uniform(2, 91))
    u[1, 17] = np.nan
    return u


# dips (any phase, all phases) and swells, each with its enter and leave levels
_TRACKER_CASES = [
    (Direction.BELOW, Rule.ANY_BEGINS, 90.0, 92.0),
    (Direction.BELOW, Rule.ALL_BEGIN, 5.0, 7.0),
    (Direction.ABOVE, Rule.ANY_BEGINS, 101.5, 100.5),
]


@pytest.mark.parametrize(("direction", "rule", "enter", "leave"), _TRACKER_CASES)
def test_skipping_a_quiet_tracker_changes_nothing(
    direction: Direction, rule: Rule, enter: float, leave: float
) -> None:
    rng = np.random.default_rng(5)
    u = _levels(rng, 3000)
    times = T0_NS + 10_000_000 * np.arange(u.shape[1], dtype=np.int64)
    stepped = ref_polyphase.PolyphaseTracker(
        3, ref_polyphase.Direction(direction), ref_polyphase.Rule(rule), enter, leave
    )
    skipping = PolyphaseTracker(3, direction, rule, enter, leave)
    recent = RecentValues(3)
    want: list[object] = []
    got: list[object] = []
    skipped = 0
    a = 0
    for _, size in enumerate(rng.integers(1, 12, size=3000).tolist()):
        if a >= u.shape[1]:
            break
        b = min(a + size, u.shape[1])
        block, t = u[:, a:b], times[a:b]
        for k in range(b - a):
            want += stepped.step(block[:, k], int(t[k]))
        if skipping.quiet and not skipping.beyond(block).any():
            skipped += 1
        else:
            skipping.catch_up(recent)
            for k in range(b - a):
                got += skipping.step(block[:, k], int(t[k]))
        recent.push(block, t)
        a = b
    want += stepped.close()
    got += skipping.close()
    assert skipped > 50
    assert [repr(w) for w in want] == [repr(g) for g in got]


def test_an_overcurrent_detector_skipping_quiet_values_gives_the_same_events() -> None:
    # one circuit near its rating: in each block, overloads that begin, end and
    # begin again, values hovering at the thresholds, and quiet stretches between
    rng = np.random.default_rng(11)
    n = 4000
    pct = 70.0 + rng.normal(0, 4.0, (2, n))
    for _ in range(25):
        a = int(rng.integers(0, n - 150))
        length = int(rng.integers(1, 150))
        # a level with ripple, so that the extreme is one value among many, and
        # that may dip back past the hysteresis or up past 400 % in between
        level = rng.uniform(95, 700) + rng.normal(0, 25, length)
        pct[int(rng.integers(0, 2)), a:a + length] = level
    pct[0, 1234] = np.nan
    pct[1, 2000:2060] = 150.0 + rng.normal(0, 1, 60)  # a long overload with a NaN in it
    pct[1, 2030] = np.nan
    times = T0_NS + 10_000_000 * np.arange(n, dtype=np.int64)
    rules = [OvercurrentRule("overload", 100.0, 0.5, Severity.WARNING),
             OvercurrentRule("instantaneous", 400.0, 0.0, Severity.CRITICAL)]

    def detector() -> OvercurrentDetector:
        ids = itertools.count(1)
        return OvercurrentDetector("c1", ("A", "B"), 16.0, rules, 2.0, 50.0,
                                   lambda: next(ids))

    every, skipping = detector(), detector()
    recent = RecentValues(2)
    want: list[Event] = []
    got: list[Event] = []
    a = 0
    for size in rng.integers(1, 160, size=n).tolist():
        if a >= n:
            break
        b = min(a + size, n)
        for events in every.process_pct(pct[:, a:b], times[a:b]):
            want += events
        for events in skipping.process_pct(pct[:, a:b], times[a:b], recent):
            got += events
        recent.push(pct[:, a:b], times[a:b])
        a = b
    want += every.close()
    got += skipping.close()
    assert len([e for e in want if e.duration_s is not None]) >= 10
    assert [repr(w) for w in want] == [repr(g) for g in got]


@pytest.mark.parametrize(("direction", "rule", "enter", "leave"), _TRACKER_CASES)
def test_coasting_over_values_that_change_no_state_changes_nothing(
    direction: Direction, rule: Rule, enter: float, leave: float
) -> None:
    # long dips with ripple (extremes among many values), chatter at the
    # thresholds, missing values, and quiet stretches between them
    rng = np.random.default_rng(9)
    u = _levels(rng, 4000)
    for _ in range(8):
        a = int(rng.integers(0, 3800))
        rows = [int(rng.integers(0, 3))] if rng.random() < 0.5 else [0, 1, 2]
        u[rows, a:a + 150] = rng.uniform(1, 120) + rng.normal(0, 2, (len(rows), 150))
    u[2, 2500:2510] = np.nan
    # an event still in progress where the data ends (open-ended: its last time counts)
    u[:, -120:] = (1.0 if direction is Direction.BELOW else 130.0) + rng.normal(0, 0.2, 120)
    times = T0_NS + 10_000_000 * np.arange(u.shape[1], dtype=np.int64)
    stepped = PolyphaseTracker(3, direction, rule, enter, leave)
    coasting = PolyphaseTracker(3, direction, rule, enter, leave)
    want = [tr for k in range(u.shape[1]) for tr in stepped.step(u[:, k], int(times[k]))]
    got: list[object] = []
    coasted = 0
    a = 0
    t = times.tolist()
    for size in rng.integers(1, 300, size=4000).tolist():
        if a >= u.shape[1]:
            break
        b = min(a + size, u.shape[1])
        k = a
        while k < b:
            end = coasting.coast_end(u, k, b)
            coasting.coast(u, t, k, end)
            coasted += end - k
            if end < b:
                got += coasting.step(u[:, end], t[end])
            k = end + 1
        a = b
    want += stepped.close()
    got += coasting.close()
    assert coasted > 2000  # most values were taken in one go
    assert [repr(w) for w in want] == [repr(g) for g in got]


@pytest.mark.parametrize("extreme_of", [Extreme.MAX, Extreme.MIN])
def test_a_run_coasting_over_spans_that_only_extend_it_changes_nothing(
    extreme_of: Extreme,
) -> None:
    # spans on, off, in the hysteresis band (neither) and ignored (missing data),
    # with runs confirmed after 40 spans, so that some confirm inside a stretch
    rng = np.random.default_rng(int(extreme_of == Extreme.MAX))
    n = 3000
    state = np.cumsum(rng.random(n) < 0.03) % 3  # long stretches: 0 off, 1 on, 2 neither
    on, off = state == 1, state == 0
    ignored = rng.random(n) < 0.02
    on &= ~ignored
    off &= ~ignored
    values = rng.normal(0.0, 10.0, n)
    start = T0_NS + 10_000_000 * np.arange(n, dtype=np.int64)
    end = start + 10_000_000
    stepped = SustainedRun(400_000_000, extreme_of)
    coasting = SustainedRun(400_000_000, extreme_of)
    want = [stepped.step(bool(on[k]), bool(off[k]), int(start[k]), int(end[k]),
                         float(values[k]))
            for k in range(n) if not ignored[k]]
    got: list[RunConfirmed | RunEnded | None] = []
    coasted = 0
    k = 0
    while k < n:
        nxt = coasting.coast(on, off, end, values, k)
        coasted += nxt - k
        if nxt >= n:
            break
        if not ignored[nxt]:
            got.append(coasting.step(bool(on[nxt]), bool(off[nxt]), int(start[nxt]),
                                     int(end[nxt]), float(values[nxt])))
        k = nxt + 1
    transitions = [w for w in want if w is not None]
    assert len([t for t in transitions if isinstance(t, RunEnded)]) >= 10
    assert [g for g in got if g is not None] == transitions
    assert coasted > n // 3
    assert coasting.close() == stepped.close()


def test_a_tracker_in_progress_cannot_be_caught_up() -> None:
    tracker = PolyphaseTracker(1, Direction.BELOW, Rule.ANY_BEGINS, 90.0, 92.0)
    tracker.step(np.array([50.0]), 0)
    recent = RecentValues(1)
    recent.push(np.array([[50.0, 50.0]]), np.array([1, 2], dtype=np.int64))
    with pytest.raises(RuntimeError, match="catch_up"):
        tracker.catch_up(recent)


@pytest.mark.parametrize("fault", ["stuck", "clipping", "dc_offset"])
def test_the_sensor_screen_never_misses_a_possible_start(fault: str) -> None:
    """A fault long enough for a frame's cycle to lie within it, anywhere in the
    block: the channel is looked at; a healthy one is not."""
    rng = np.random.default_rng(6)
    channels = [ChannelInfo("v", Quantity.VOLTAGE, rate_hz=FS, full_scale=480.0,
                            resolution=0.02)]
    detector = SensorFaultDetector(channels, ["A"], SensorSettings(), 50.0, lambda: 1)
    cycle = 128
    t = time_axis(FS, 0.2)
    ends = np.arange(cycle, t.size + 1, 64)
    for _ in range(40):
        x = sine(t, 50.0, 230.0, float(rng.uniform(0, 6)))[None, :]
        a = int(rng.integers(0, t.size - 3 * cycle // 2))
        fault_at = slice(a, a + 3 * cycle // 2)  # holds a whole frame window
        if fault == "stuck":
            x[0, fault_at] = 37.3
        elif fault == "clipping":
            x[0, a] = 480.0
        else:  # a one-cycle mean above 10 % of full scale, with ripple (not stuck)
            x[0, fault_at] = 60.0 + 5.0 * np.sin(np.arange(3 * cycle // 2))
        assert detector._may_start(x, ends, cycle)[0]
    quiet = sine(t, 50.0, 230.0)[None, :]
    assert not detector._may_start(quiet, ends, cycle)[0]
