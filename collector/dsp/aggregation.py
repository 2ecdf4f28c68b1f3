"""Time aggregation of basic-interval values (IEC 61000-4-30 Ed.3, 4.5).

* 150/180 cycles: 15 consecutive basic intervals (:func:`aggregate_cycles`).
  The count re-synchronises at every 10-min tick: the basic interval that
  contains the tick ends the running aggregate early, and the next aggregate
  starts with the following interval (the standard's "overlap 2").
* 10 min: the basic intervals whose start lies in a clock-aligned 10-min
  period; the interval that contains the closing tick is the last one
  ("overlap 1").  Labelled with the tick that opens the period.
* 2 h: the twelve 10-min values of a clock-aligned 2-h period.

Values are one 2-D array per constituent: rows are records (a channel or a
circuit phase), columns are fields.  Each column has an aggregation kind:
RMS-type quantities take ``sqrt(mean(x^2))``, powers and other averages the
mean, peaks the maximum, counters the sum, cumulative counters the last
value; NaN ("not available") is left out and an all-NaN column stays NaN.
Columns of kind ``DERIVED`` are recomputed by the caller from the aggregated
columns (ratios such as power factor).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numba
import numpy as np
from numpy.typing import NDArray

from collector.model import NS_PER_S

TEN_MINUTES_NS = 600 * NS_PER_S
# Basic intervals in a 150/180-cycle aggregate.
INTERVALS_PER_AGGREGATE = 15
TWO_HOURS_NS = 7200 * NS_PER_S


class AggKind(IntEnum):
    """How a field aggregates over time."""

    RMS = 0
    MEAN = 1
    MAX = 2
    MIN = 3
    SUM = 4
    LAST = 5
    DERIVED = 6


@dataclass(frozen=True, slots=True)
class AggregationPlan:
    """Aggregation kind of every column, as broadcastable masks."""

    kinds: NDArray[np.int8]
    rms: NDArray[np.bool_]
    mean: NDArray[np.bool_]
    maximum: NDArray[np.bool_]
    minimum: NDArray[np.bool_]
    total: NDArray[np.bool_]
    last: NDArray[np.bool_]


def aggregation_plan(kinds: list[AggKind] | tuple[AggKind, ...]) -> AggregationPlan:
    """Masks for a column list of aggregation kinds."""
    k = np.asarray([int(x) for x in kinds], dtype=np.int8)
    return AggregationPlan(
        kinds=k,
        rms=k == AggKind.RMS,
        mean=k == AggKind.MEAN,
        maximum=k == AggKind.MAX,
        minimum=k == AggKind.MIN,
        total=k == AggKind.SUM,
        last=k == AggKind.LAST,
    )


@dataclass(frozen=True, slots=True)
class Constituent:
    """One interval fed to an aggregator.

    Attributes
    ----------
    values : NDArray[np.float64]
        Shape (records, fields); NaN = not available.
    start_ns, end_ns : int
        Interval [start, end) [ns since epoch].
    flagged : bool
        Overlapped a dip, swell or interruption.
    contiguous : bool
        Starts exactly where the previous constituent ended.
    complete : bool
        Itself a complete interval (always True for basic intervals).
    contribution : Contribution | None
        ``contribution(values, plan)`` when the caller already has it (one
        basic interval feeds two aggregators); computed when None.
    """

    values: NDArray[np.float64]
    start_ns: int
    end_ns: int
    flagged: bool = False
    contiguous: bool = True
    complete: bool = True
    contribution: Contribution | None = None


@dataclass(frozen=True, slots=True)
class ConstituentBatch:
    """Consecutive constituents fed to an aggregator at once.

    The same as one :class:`Constituent` each, with the values and their
    running-sum terms stacked: arrays are (W, records, fields), lists have W
    items.  Constituents that go into the same aggregate are added in one
    compiled pass.
    """

    values: NDArray[np.float64]
    contribution: Contribution
    start_ns: list[int]
    end_ns: list[int]
    flagged: list[bool]
    contiguous: list[bool]
    complete: list[bool]

    @classmethod
    def of(cls, c: Constituent, plan: AggregationPlan) -> ConstituentBatch:
        """A batch of one."""
        terms = _terms(c, plan)
        return cls(
            values=c.values[None],
            contribution=Contribution(terms.summand[None], terms.valid[None]),
            start_ns=[c.start_ns],
            end_ns=[c.end_ns],
            flagged=[c.flagged],
            contiguous=[c.contiguous],
            complete=[c.complete],
        )

    def constituent(self, w: int) -> Constituent:
        return Constituent(
            values=self.values[w],
            start_ns=self.start_ns[w],
            end_ns=self.end_ns[w],
            flagged=self.flagged[w],
            contiguous=self.contiguous[w],
            complete=self.complete[w],
            contribution=Contribution(self.contribution.summand[w], self.contribution.valid[w]),
        )

    def fold(self, acc: Accumulator, lo: int, hi: int) -> Accumulator:
        """``acc`` with intervals ``lo .. hi - 1`` added (none: ``acc`` itself)."""
        if hi <= lo:
            return acc
        return _fold(
            acc, self.values, self.contribution.summand, self.contribution.valid, lo, hi,
            end_ns=self.end_ns[hi - 1],
            flagged=any(self.flagged[lo:hi]),
            chained=all(self.contiguous[lo:hi]),
            complete=all(self.complete[lo:hi]),
        )


@dataclass(frozen=True, slots=True)
class Accumulator:
    """Running sums of one aggregate.

    ``highest``/``lowest`` track every column (NaN-ignoring), so adding a
    constituent is two ufunc calls whatever the columns' kinds; ``finalize``
    picks the one each MAX/MIN column needs.
    """

    label_ns: int
    start_ns: int
    end_ns: int
    count: int
    total: NDArray[np.float64]
    valid: NDArray[np.int64]
    highest: NDArray[np.float64]
    lowest: NDArray[np.float64]
    last: NDArray[np.float64]
    flagged: bool
    chained: bool  # no constituent is missing since the aggregate opened
    constituents_complete: bool


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A finished aggregate.

    Attributes
    ----------
    label_ns : int
        ``Metrics.time_ns`` of the aggregate: the period's opening tick for
        10-min / 2-h, the first constituent's start for 150/180 cycles.
    start_ns, end_ns : int
        Span actually covered by the constituents [ns].
    count : int
        Number of constituents.
    values : NDArray[np.float64]
        Aggregated values, (records, fields); DERIVED columns are NaN.
    flagged : bool
    complete : bool
        True when the aggregate covers its whole nominal length with no
        missing constituent.
    """

    label_ns: int
    start_ns: int
    end_ns: int
    count: int
    values: NDArray[np.float64]
    flagged: bool
    complete: bool


@dataclass(frozen=True, slots=True)
class Contribution:
    """What a constituent adds to the running sums: values (squared for RMS
    columns) with NaN as 0, and which cells were valid."""

    summand: NDArray[np.float64]
    valid: NDArray[np.bool_]


def contribution(values: NDArray[np.float64], plan: AggregationPlan) -> Contribution:
    """The running-sum terms of ``values`` (any leading shape, fields last): NaN as 0,
    squared in RMS columns; in one compiled pass (five numpy passes took 3x as long)."""
    rows = np.ascontiguousarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
    summand = np.empty(rows.shape)
    valid = np.empty(rows.shape, dtype=np.bool_)
    _contribution(rows, plan.rms, summand, valid)
    return Contribution(summand.reshape(values.shape), valid.reshape(values.shape))


@numba.njit(cache=True)
def _contribution(
    values: NDArray[np.float64],
    rms: NDArray[np.bool_],
    summand: NDArray[np.float64],
    valid: NDArray[np.bool_],
) -> None:
    """``valid = ~isnan(values)``; ``summand`` the value (0 where NaN), squared where
    ``rms`` (per column)."""
    for i in range(values.shape[0]):
        for f in range(values.shape[1]):
            v = values[i, f]
            ok = v == v
            v0 = v if ok else 0.0
            summand[i, f] = v0 * v0 if rms[f] else v0
            valid[i, f] = ok


def _terms(c: Constituent, plan: AggregationPlan) -> Contribution:
    return c.contribution if c.contribution is not None else contribution(c.values, plan)


def open_accumulator(
    c: Constituent, plan: AggregationPlan, label_ns: int, chained: bool
) -> Accumulator:
    """Start an aggregate with its first constituent."""
    terms = _terms(c, plan)
    return Accumulator(
        label_ns=label_ns,
        start_ns=c.start_ns,
        end_ns=c.end_ns,
        count=1,
        total=terms.summand.copy(),
        valid=terms.valid.astype(np.int64),
        highest=c.values.copy(),
        lowest=c.values.copy(),
        last=c.values.copy(),
        flagged=c.flagged,
        chained=chained,
        constituents_complete=c.complete,
    )


def _fold(
    acc: Accumulator,
    values: NDArray[np.float64],
    summand: NDArray[np.float64],
    valid: NDArray[np.bool_],
    lo: int,
    hi: int,
    *,
    end_ns: int,
    flagged: bool,
    chained: bool,
    complete: bool,
) -> Accumulator:
    """``acc`` with constituents ``lo .. hi - 1`` of (W, records, fields) arrays added
    in order; the flags say whether any was flagged, all were contiguous and complete."""
    total, count, highest, lowest, last = _fold_arrays(
        acc.total, acc.valid, acc.highest, acc.lowest, acc.last, summand, valid, values, lo, hi
    )
    # the constructor, not dataclasses.replace: this runs for every batch
    return Accumulator(
        label_ns=acc.label_ns,
        start_ns=acc.start_ns,
        end_ns=end_ns,
        count=acc.count + hi - lo,
        total=total,
        valid=count,
        highest=highest,
        lowest=lowest,
        last=last,
        flagged=acc.flagged or flagged,
        chained=acc.chained and chained,
        constituents_complete=acc.constituents_complete and complete,
    )


@numba.njit(cache=True)
def _fold_arrays(
    total: NDArray[np.float64],
    valid: NDArray[np.int64],
    highest: NDArray[np.float64],
    lowest: NDArray[np.float64],
    last: NDArray[np.float64],
    summand: NDArray[np.float64],
    is_valid: NDArray[np.bool_],
    values: NDArray[np.float64],
    lo: int,
    hi: int,
) -> tuple[
    NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64],
    NDArray[np.float64],
]:
    """The running sums after constituents ``lo .. hi - 1``, as new (records, fields) arrays.

    For each constituent in turn, what is ``total + summand``,
    ``valid + is_valid``, ``np.fmax(highest, v)``, ``np.fmin(lowest, v)`` and
    ``np.where(is_valid, v, last)``: the maximum and minimum ignore NaN on
    either side and are NaN only when both are (of +0 and -0, either may stay).

    Cell by cell over flat views, with ``fmax``/``fmin`` and selects instead of
    branches: the compiler vectorises it (1.8x faster than branching per cell).
    """
    t_out = total.copy()
    n_out = valid.copy()
    h_out = highest.copy()
    l_out = lowest.copy()
    last_out = last.copy()
    t_flat, n_flat, h_flat = t_out.ravel(), n_out.ravel(), h_out.ravel()
    l_flat, last_flat = l_out.ravel(), last_out.ravel()
    for w in range(lo, hi):
        x_w = values[w].ravel()
        s_w = summand[w].ravel()
        ok_w = is_valid[w].ravel()
        for c in range(t_flat.size):
            x = x_w[c]
            ok = ok_w[c]
            t_flat[c] += s_w[c]
            n_flat[c] += numba.int64(ok)
            h_flat[c] = np.fmax(h_flat[c], x)
            l_flat[c] = np.fmin(l_flat[c], x)
            last_flat[c] = x if ok else last_flat[c]
    return t_out, n_out, h_out, l_out, last_out


def compile_loops() -> None:
    """Compile this module's numba loop now, or load it from numba's cache: at
    start-up rather than at the first block."""
    one = np.zeros((1, 1))
    many = np.zeros((1, 1, 1))
    flags = np.zeros((1, 1), dtype=np.bool_)
    _contribution(one, flags[0], np.empty((1, 1)), flags.copy())
    _fold_arrays(
        one, np.zeros((1, 1), dtype=np.int64), one, one, one, many,
        np.ones((1, 1, 1), dtype=np.bool_), many, 0, 1,
    )


def finalize(acc: Accumulator, plan: AggregationPlan) -> NDArray[np.float64]:
    """Aggregated values; DERIVED columns are NaN for the caller to fill."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(acc.valid > 0, acc.total / acc.valid, np.nan)
    out = np.full(acc.total.shape, np.nan)
    out = np.where(plan.rms, np.sqrt(np.where(plan.rms, mean, 0.0)), out)
    out = np.where(plan.mean, mean, out)
    out = np.where(plan.total, np.where(acc.valid > 0, acc.total, np.nan), out)
    out = np.where(plan.maximum, acc.highest, out)
    out = np.where(plan.minimum, acc.lowest, out)
    out = np.where(plan.last, acc.last, out)
    return np.asarray(out)


def contains_tick(start_ns: int, end_ns: int, period_ns: int) -> bool:
    """True when a clock tick (multiple of ``period_ns``) lies in (start, end]."""
    return start_ns // period_ns != end_ns // period_ns


@dataclass(frozen=True, slots=True)
class CycleAggregatorState:
    """State of :func:`aggregate_cycles`."""

    acc: Accumulator | None = None


def _close(acc: Accumulator, plan: AggregationPlan, complete: bool) -> Aggregate:
    return Aggregate(
        label_ns=acc.label_ns,
        start_ns=acc.start_ns,
        end_ns=acc.end_ns,
        count=acc.count,
        values=finalize(acc, plan),
        flagged=acc.flagged,
        complete=complete,
    )


def aggregate_cycles(
    c: Constituent,
    state: CycleAggregatorState,
    plan: AggregationPlan,
    intervals: int = INTERVALS_PER_AGGREGATE,
    tick_ns: int = TEN_MINUTES_NS,
) -> tuple[list[Aggregate], CycleAggregatorState]:
    """150/180-cycle aggregation of basic intervals, re-synchronised at ticks.

    Parameters
    ----------
    c : Constituent
        The next basic interval.
    state : CycleAggregatorState
    plan : AggregationPlan
    intervals : int
        Basic intervals per aggregate (15 = 150 cycles at 50 Hz, 180 at 60 Hz).
    tick_ns : int
        Re-synchronisation period [ns] (10 min).

    Returns
    -------
    done : list[Aggregate]
        Aggregates completed by this interval; ``complete`` is True for a
        full, gap-free set of ``intervals``.
    state : CycleAggregatorState
    """
    done, state = aggregate_cycles_batch(
        ConstituentBatch.of(c, plan), state, plan, intervals, tick_ns
    )
    return [a for _, a in done], state


def close_cycles(
    state: CycleAggregatorState, plan: AggregationPlan
) -> tuple[list[Aggregate], CycleAggregatorState]:
    """Emit the running 150/180-cycle aggregate as incomplete (flush or restart)."""
    if state.acc is None:
        return [], state
    return [_close(state.acc, plan, complete=False)], CycleAggregatorState()


@dataclass(frozen=True, slots=True)
class ClockAggregatorState:
    """State of :func:`aggregate_clock`.

    Attributes
    ----------
    acc : Accumulator | None
        The open period.
    after_tick : bool
        The previous period was closed by the constituent containing its
        closing tick, so the next constituent starts the new period on time.
    """

    acc: Accumulator | None = None
    after_tick: bool = False


def aggregate_clock(
    c: Constituent, state: ClockAggregatorState, plan: AggregationPlan, period_ns: int
) -> tuple[list[Aggregate], ClockAggregatorState]:
    """Clock-aligned aggregation (10 min from basic intervals, 2 h from 10 min).

    A constituent belongs to the period that holds its start; the constituent
    that contains the closing tick is the last of its period.

    Parameters
    ----------
    c : Constituent
    state : ClockAggregatorState
    plan : AggregationPlan
    period_ns : int
        Period [ns]: 600 s or 7200 s.

    Returns
    -------
    done : list[Aggregate]
        Closed periods, labelled with their opening tick.  ``complete`` when
        the period was entered on time, no constituent is missing or
        incomplete and its closing tick was reached.
    state : ClockAggregatorState
    """
    done, state = aggregate_clock_batch(ConstituentBatch.of(c, plan), state, plan, period_ns)
    return [a for _, a in done], state


def close_clock(
    state: ClockAggregatorState, plan: AggregationPlan
) -> tuple[list[Aggregate], ClockAggregatorState]:
    """Emit the open period as incomplete (flush)."""
    if state.acc is None:
        return [], ClockAggregatorState()
    return [_close(state.acc, plan, complete=False)], ClockAggregatorState()


def aggregate_cycles_batch(
    batch: ConstituentBatch,
    state: CycleAggregatorState,
    plan: AggregationPlan,
    intervals: int = INTERVALS_PER_AGGREGATE,
    tick_ns: int = TEN_MINUTES_NS,
) -> tuple[list[tuple[int, Aggregate]], CycleAggregatorState]:
    """:func:`aggregate_cycles` of each constituent of ``batch`` in turn (that
    function is this one with a batch of one).

    Returns each completed aggregate with the index of the constituent that
    completed it, and the state after the last one.
    """
    done: list[tuple[int, Aggregate]] = []
    acc = state.acc
    lo = 0  # first interval not yet added to acc
    for w in range(len(batch.start_ns)):
        if acc is not None and not batch.contiguous[w]:
            done.append((w, _close(batch.fold(acc, lo, w), plan, complete=False)))
            acc = None
        if acc is None:
            acc = open_accumulator(batch.constituent(w), plan, batch.start_ns[w], True)
            lo = w + 1
        count = acc.count + w + 1 - lo
        if count >= intervals or contains_tick(batch.start_ns[w], batch.end_ns[w], tick_ns):
            acc = batch.fold(acc, lo, w + 1)
            done.append((w, _close(acc, plan, complete=acc.count == intervals and acc.chained)))
            acc = None
    if acc is not None:
        acc = batch.fold(acc, lo, len(batch.start_ns))
    return done, CycleAggregatorState(acc)


def aggregate_clock_batch(
    batch: ConstituentBatch,
    state: ClockAggregatorState,
    plan: AggregationPlan,
    period_ns: int,
) -> tuple[list[tuple[int, Aggregate]], ClockAggregatorState]:
    """:func:`aggregate_clock` of each constituent of ``batch`` in turn (that
    function is this one with a batch of one).

    Returns each closed period with the index of the constituent that closed
    it, and the state after the last one.
    """
    done: list[tuple[int, Aggregate]] = []
    acc = state.acc
    after_tick = state.after_tick
    lo = 0
    for w in range(len(batch.start_ns)):
        label = (batch.start_ns[w] // period_ns) * period_ns
        if acc is not None and acc.label_ns != label:
            done.append((w, _close(batch.fold(acc, lo, w), plan, complete=False)))
            acc, after_tick = None, False
        if acc is None:
            chained = after_tick and batch.contiguous[w]
            acc = open_accumulator(batch.constituent(w), plan, label, chained=chained)
            lo = w + 1
        if contains_tick(batch.start_ns[w], batch.end_ns[w], period_ns):
            acc = batch.fold(acc, lo, w + 1)
            done.append((w, _close(acc, plan, complete=acc.chained and acc.constituents_complete)))
            acc, after_tick = None, True
    if acc is not None:
        acc = batch.fold(acc, lo, len(batch.start_ns))
    return done, ClockAggregatorState(acc, after_tick=after_tick)
