"""IEC 61000-4-30 §4.5 aggregation: kinds, 150/180-cycle re-sync, clock periods."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.dsp.aggregation import (
    TEN_MINUTES_NS,
    TWO_HOURS_NS,
    AggKind,
    Aggregate,
    ClockAggregatorState,
    Constituent,
    ConstituentBatch,
    CycleAggregatorState,
    aggregate_clock,
    aggregate_clock_batch,
    aggregate_cycles,
    aggregate_cycles_batch,
    aggregation_plan,
    close_clock,
    close_cycles,
    contains_tick,
    contribution,
)
from collector.model import NS_PER_S

KINDS = [
    AggKind.RMS,
    AggKind.MEAN,
    AggKind.MAX,
    AggKind.MIN,
    AggKind.SUM,
    AggKind.LAST,
    AggKind.DERIVED,
]
PLAN = aggregation_plan(KINDS)
STEP = NS_PER_S // 5  # 0.2-s basic intervals
TICK = 1_700_000_400 * NS_PER_S  # a 10-min tick


def basic(k: int, row: list[float], t0: int = TICK - 10 * STEP, **kw: bool) -> Constituent:
    return Constituent(
        np.asarray([row], dtype=np.float64), t0 + k * STEP, t0 + (k + 1) * STEP, **kw
    )


def test_each_kind_aggregates_as_specified_and_skips_nan() -> None:
    rows = [
        [3.0, -2.0, 5.0, 5.0, 1.0, 10.0, 7.0],
        [4.0, 4.0, 9.0, 1.0, 2.0, 11.0, 7.0],
        [np.nan] * 7,
    ]
    state = CycleAggregatorState()
    done = []
    for k, r in enumerate(rows):
        out, state = aggregate_cycles(basic(k, r, t0=TICK + STEP), state, PLAN, intervals=3)
        done += out
    (agg,) = done
    v = agg.values[0]
    assert v[0] == pytest.approx(math.sqrt((9 + 16) / 2))
    assert v[1] == pytest.approx(1.0)
    assert (v[2], v[3], v[4], v[5]) == (9.0, 1.0, 3.0, 11.0)
    assert np.isnan(v[6])
    assert agg.count == 3
    assert agg.complete


def test_cycle_aggregate_resyncs_at_the_ten_minute_tick() -> None:
    state = CycleAggregatorState()
    done = []
    t0 = TICK - 7 * STEP - STEP // 2  # interval 7 holds the tick
    for k in range(30):
        out, state = aggregate_cycles(basic(k, [1.0] * 7, t0=t0), state, PLAN)
        done += out
    assert [a.count for a in done] == [8, 15]
    assert done[0].complete is False  # cut short at the tick
    assert done[0].start_ns == t0
    assert done[0].end_ns == t0 + 8 * STEP
    assert done[1].label_ns == t0 + 8 * STEP
    assert done[1].complete


def test_gap_and_flush_close_the_cycle_aggregate_incomplete() -> None:
    state = CycleAggregatorState()
    for k in range(5):
        _, state = aggregate_cycles(basic(k, [1.0] * 7, t0=TICK + STEP), state, PLAN)
    out, state = aggregate_cycles(
        basic(9, [2.0] * 7, t0=TICK + STEP, contiguous=False), state, PLAN
    )
    assert [(a.count, a.complete) for a in out] == [(5, False)]
    out, state = close_cycles(state, PLAN)
    assert [(a.count, a.complete) for a in out] == [(1, False)]
    assert close_cycles(state, PLAN)[0] == []


def test_contains_tick() -> None:
    assert contains_tick(TICK - 5, TICK, TEN_MINUTES_NS)  # ends exactly on the tick
    assert not contains_tick(TICK, TICK + 5, TEN_MINUTES_NS)  # starts on it
    assert contains_tick(TICK - 5, TICK + 5, TEN_MINUTES_NS)


def feed_clock(
    starts: list[int], state: ClockAggregatorState, **kw: bool
) -> tuple[list[Aggregate], ClockAggregatorState]:
    done: list[Aggregate] = []
    for s in starts:
        c = Constituent(np.ones((1, 7)), s, s + STEP, **kw)
        out, state = aggregate_clock(c, state, PLAN, TEN_MINUTES_NS)
        done += out
    return done, state


def test_clock_periods_are_labelled_by_their_tick_and_complete_only_when_whole() -> None:
    first = TICK - 1000 * STEP + STEP // 3  # starts mid-period
    starts = [first + k * STEP for k in range(1000 + 3000 + 10)]
    done, state = feed_clock(starts, ClockAggregatorState())
    assert [a.label_ns for a in done] == [TICK - TEN_MINUTES_NS, TICK]
    assert [a.complete for a in done] == [False, True]
    assert done[0].count == 1000  # the interval over the tick belongs to the old period
    assert done[1].count == 3000
    tail, _ = close_clock(state, PLAN)
    assert tail[0].label_ns == TICK + TEN_MINUTES_NS
    assert not tail[0].complete


def test_a_gap_makes_the_period_incomplete() -> None:
    starts = [TICK - STEP + k * STEP for k in range(1 + 3000 + 3000)]
    # the first interval ends on TICK and closes the (partial) period before it
    done, state = feed_clock(starts[:1500], ClockAggregatorState())
    more, state = feed_clock(starts[1500:1501], state, contiguous=False)  # a gap
    done += more
    more, state = feed_clock(starts[1501:], state)
    done += more
    assert [a.label_ns for a in done] == [TICK - TEN_MINUTES_NS, TICK, TICK + TEN_MINUTES_NS]
    assert [a.complete for a in done] == [False, False, True]


def test_two_hours_from_ten_minute_values() -> None:
    base = 1_700_006_400 * NS_PER_S  # a 2-h tick
    assert base % TWO_HOURS_NS == 0
    state = ClockAggregatorState(after_tick=True)
    done = []
    for k in range(24):
        value = np.full((1, 7), float(k))
        c = Constituent(
            value,
            base + k * TEN_MINUTES_NS,
            base + (k + 1) * TEN_MINUTES_NS,
            contiguous=True,
            complete=k != 15,
        )
        out, state = aggregate_clock(c, state, PLAN, TWO_HOURS_NS)
        done += out
    assert [a.label_ns for a in done] == [base, base + TWO_HOURS_NS]
    assert [a.count for a in done] == [12, 12]
    assert [a.complete for a in done] == [True, False]  # the 16th 10-min value was incomplete
    assert done[0].values[0, 1] == pytest.approx(5.5)
    assert done[0].values[0, 0] == pytest.approx(math.sqrt(np.mean(np.arange(12.0) ** 2)))


def _same_aggregate(a: Aggregate, b: Aggregate) -> None:
    assert (a.label_ns, a.start_ns, a.end_ns, a.count, a.flagged, a.complete) == (
        b.label_ns, b.start_ns, b.end_ns, b.count, b.flagged, b.complete
    )
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_of_intervals_aggregate_as_one_interval_at_a_time(seed: int) -> None:
    # 3.5 min of intervals around a 10-min tick, with NaN cells, flagged intervals,
    # a gap and an interval that is not contiguous, fed in batches of random size
    rng = np.random.default_rng(seed)
    n = 1050
    values = rng.normal(100.0, 10.0, (n, 3, len(KINDS)))
    values[rng.random(values.shape) < 0.05] = np.nan
    values[40:60, 1, :] = np.nan  # a record with nothing for a while
    starts = [TICK - 700 * STEP + k * STEP for k in range(n)]
    starts = [t + (5 * STEP if k >= 800 else 0) for k, t in enumerate(starts)]  # the gap
    ends = [t + STEP for t in starts]
    flagged = (rng.random(n) < 0.03).tolist()
    contiguous = [k not in (0, 800) for k in range(n)]
    single: dict[str, list[tuple[int, Aggregate]]] = {"cycles": [], "clock": []}
    cyc, clk = CycleAggregatorState(), ClockAggregatorState()
    for k in range(n):
        c = Constituent(values[k], starts[k], ends[k], flagged[k], contiguous[k])
        done, cyc = aggregate_cycles(c, cyc, PLAN)
        single["cycles"] += [(k, a) for a in done]
        done, clk = aggregate_clock(c, clk, PLAN, TEN_MINUTES_NS)
        single["clock"] += [(k, a) for a in done]
    batched: dict[str, list[tuple[int, Aggregate]]] = {"cycles": [], "clock": []}
    bcyc, bclk = CycleAggregatorState(), ClockAggregatorState()
    lo = 0
    while lo < n:
        hi = min(n, lo + int(rng.integers(1, 40)))
        batch = ConstituentBatch(
            values[lo:hi], contribution(values[lo:hi], PLAN), starts[lo:hi], ends[lo:hi],
            flagged[lo:hi], contiguous[lo:hi], [True] * (hi - lo),
        )
        done_b, bcyc = aggregate_cycles_batch(batch, bcyc, PLAN)
        batched["cycles"] += [(lo + w, a) for w, a in done_b]
        done_b, bclk = aggregate_clock_batch(batch, bclk, PLAN, TEN_MINUTES_NS)
        batched["clock"] += [(lo + w, a) for w, a in done_b]
        lo = hi
    for name in ("cycles", "clock"):
        assert [k for k, _ in batched[name]] == [k for k, _ in single[name]]
        for (_, a), (_, b) in zip(batched[name], single[name], strict=True):
            _same_aggregate(a, b)
    assert len(single["cycles"]) >= 60
    assert len(single["clock"]) == 1  # the 10-min period closed at the tick
    assert {a.complete for _, a in single["cycles"]} == {True, False}
    assert any(a.flagged for _, a in single["cycles"])
    # and the open aggregates are the same
    for done_b, done in (
        (close_cycles(bcyc, PLAN)[0], close_cycles(cyc, PLAN)[0]),
        (close_clock(bclk, PLAN)[0], close_clock(clk, PLAN)[0]),
    ):
        assert len(done_b) == len(done) == 1
        _same_aggregate(done_b[0], done[0])
