"""The streaming metrics engine: sample blocks in, interval metrics out.

A thin stateful wrapper around the pure functions of :mod:`collector.dsp`:

1. the reference voltage's positive-going zero crossings (band-passed,
   sub-sample) cut the stream into basic intervals of exactly 10 cycles
   (50 Hz) / 12 cycles (60 Hz), IEC 61000-4-30 Ed.3, 4.4 and 5.1;
2. every window of every channel is resampled to 2^k samples per cycle in
   one compiled loop and transformed by one FFT, giving harmonic groups
   (IEC 61000-4-7), fundamental phasors and, where channels were not sampled
   together, their time alignment;
3. RMS and active power are integrated over the exact fractional window,
   powers follow IEEE 1459-2010, unbalance follows symmetrical components;
4. basic intervals aggregate to 150/180 cycles, clock-aligned 10 min and 2 h
   (IEC 61000-4-30, 4.5), flagged when a dip, swell or interruption overlapped.

See docs/measurement.md for the methods and the accuracy achieved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from collector.dsp import aggregation as agg
from collector.dsp import (
    harmonics,
    interval,
    records,
    resample,
    rms,
    unbalance,
    zero_crossing,
)
from collector.dsp.framing import (
    FramingConfig,
    FramingState,
    Windows,
    frame_windows,
    framing_config,
)
from collector.dsp.gaps import max_gap_samples
from collector.dsp.harmonics import harmonic_max_order
from collector.dsp.interval import IntervalConfig, interval_values, measure_channels
from collector.dsp.records import BASIC_INTERVALS, COUNT, INTERVAL_COMPLETE, derive, to_metrics
from collector.dsp.resample import (
    PASSBAND_EDGE,
    interpolation_kernel,
    synchronous_samples_per_cycle,
)
from collector.dsp.topology import build_topology
from collector.dsp.zero_crossing import (
    CrossingDetector,
    CrossingState,
    crossing_detector,
    initial_crossing_state,
    positive_crossings,
)
from collector.model import NS_PER_S, Block, Metrics, Phase, Quantity, SourceCapabilities

AGGREGATIONS = ("basic", "150c", "10min", "2h")
_CYCLES_PER_INTERVAL = {50.0: 10, 60.0: 12}
# Below this many samples per cycle the fractional-window integral of v^2 is
# not accurate to 1e-4; RMS and P then come from the resampled window.
_TIME_DOMAIN_MIN_SPC = 16.0
# Schmitt-trigger threshold of the crossing detector, as a fraction of the
# nominal peak voltage (or of full scale when the nominal is unknown).
_HYSTERESIS_OF_NOMINAL = 0.02
_HYSTERESIS_OF_FULL_SCALE = 0.01
# Windows measured together: enough to amortise the per-call overhead, few
# enough that the resampled arrays stay at a few MB.
_WINDOWS_PER_BATCH = 25
# crossings_ns when a call found none (read-only: shared by every such call)
_NO_CROSSINGS = np.empty(0, dtype=np.int64)
_NO_CROSSINGS.setflags(write=False)


@dataclass(frozen=True, slots=True)
class CircuitSpec:
    """A circuit: its current channels and the voltage each one pairs with.

    ``voltage_channels`` is either as long as ``current_channels`` (the k-th
    current pairs with the k-th voltage; ``""`` for a current without one,
    such as a neutral CT) or empty for a current-only circuit.  Two or three
    pairs make a split-phase or three-phase circuit; a phase-N current in the
    list is the neutral, not a phase.
    """

    id: str
    current_channels: tuple[str, ...]
    voltage_channels: tuple[str, ...]


def min_sample_rate_hz(nominal_frequency_hz: float) -> float:
    """Lowest per-channel sample rate the engine accepts [Hz].

    The fundamental (allowing it to run 1.5 % high) must lie in the
    resampler's pass band of 0.41 fs: about 124 Hz at 50 Hz, 149 Hz at 60 Hz.
    """
    return nominal_frequency_hz * 1.015 / PASSBAND_EDGE


def circuits_from_capabilities(caps: SourceCapabilities) -> tuple[CircuitSpec, ...]:
    """Circuits implied by ``ChannelInfo.circuit`` of the current channels.

    Each current pairs with the voltage channel of its phase, or with the only
    voltage channel when there is one; a circuit with a current that finds no
    voltage is current-only.  Neutral (phase N) currents are not phases: they
    enter the circuit's residual current.
    """
    voltages = [c for c in caps.channels if c.quantity is Quantity.VOLTAGE]
    by_circuit: dict[str, list[str]] = {}
    pairs: dict[str, list[str | None]] = {}
    for ch in caps.channels:
        if ch.quantity is not Quantity.CURRENT or ch.circuit is None or ch.phase is Phase.N:
            continue
        match = [v.id for v in voltages if ch.phase is not None and v.phase is ch.phase]
        partner = match[0] if match else (voltages[0].id if len(voltages) == 1 else None)
        by_circuit.setdefault(ch.circuit, []).append(ch.id)
        pairs.setdefault(ch.circuit, []).append(partner)
    out = []
    for cid, currents in by_circuit.items():
        partners = pairs[cid]
        volts = tuple(p for p in partners if p is not None)
        out.append(CircuitSpec(cid, tuple(currents), volts if len(volts) == len(currents) else ()))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _StreamConfig:
    """Constants that depend on the sample rate of a stream."""

    interval: IntervalConfig
    detector: CrossingDetector | None
    framing: FramingConfig

    @property
    def fs_hz(self) -> float:
        return self.interval.fs_hz


@dataclass(frozen=True, slots=True)
class _Stream:
    """State of one contiguous stream (restarted on gaps and rate changes)."""

    config: _StreamConfig
    t0_ns: int
    origin: int  # stream index of buffer column 0
    buffer: NDArray[np.float64]  # (C, L)
    crossing: CrossingState | None
    framing: FramingState
    detected: int = 0  # stream samples examined for crossings and windows
    windows_done: int = 0


@dataclass(slots=True)
class _Aggregators:
    cycles: agg.CycleAggregatorState = field(default_factory=agg.CycleAggregatorState)
    ten_min: agg.ClockAggregatorState = field(default_factory=agg.ClockAggregatorState)
    two_hour: agg.ClockAggregatorState = field(default_factory=agg.ClockAggregatorState)


class MetricsEngine:
    """Streaming IEC 61000-4-30 style metrics for the channels of one source.

    Parameters
    ----------
    capabilities : SourceCapabilities
        Channels (in block row order) and what the source can deliver.
    circuits : Sequence[CircuitSpec]
        Circuits to report; current channels in none of them get a
        current-only record each (channel id as the record's channel).
    reference_channel : str | None
        Voltage channel that drives frequency and window synchronisation;
        default the first voltage channel.  Without one, windows have the
        nominal length and frequency is None.
    nominal_frequency_hz : float | None
        50 or 60; default ``capabilities.nominal_frequency_hz``.
    aggregations : tuple[str, ...]
        Which intervals to emit: "basic", "150c" (or "180c"), "10min", "2h".
    energy_start : Mapping[str, tuple[float, float]] | None
        (import, export) [Wh] counters to resume from, keyed by circuit id
        for single-phase circuits and ``"<circuit>:<phase>"`` for each phase
        of a multi-phase circuit (the total is the sum of its phases).
    batch_s : float
        Measure once at least this much signal [s] has arrived.  0 measures
        every block, so each interval is returned with the block it completes
        in; with small blocks (0.1 s) a batch of about 1 s halves the CPU time,
        at the cost of returning intervals up to ``batch_s`` later.
    batch_to_aggregates : bool
        Also measure as soon as the pending signal holds the last basic
        interval of the running 150/180-cycle aggregate (the end of the
        interval that holds a 10-min tick, when one comes first).  With
        ``batch_s`` above the aggregate's ~3 s, batches then end where the
        aggregates do: the aggregates come out as early as without batching
        while the engine measures 15 intervals at a time.  Basic intervals
        come out up to ~3 s later.
    """

    def __init__(
        self,
        capabilities: SourceCapabilities,
        circuits: Sequence[CircuitSpec],
        *,
        reference_channel: str | None = None,
        nominal_frequency_hz: float | None = None,
        aggregations: tuple[str, ...] = AGGREGATIONS,
        energy_start: Mapping[str, tuple[float, float]] | None = None,
        batch_s: float = 0.0,
        batch_to_aggregates: bool = False,
    ) -> None:
        if not batch_s >= 0:
            raise ValueError(f"batch_s: must be >= 0, got {batch_s}")
        self._batch_s = float(batch_s)
        self._batch_to_aggregates = batch_to_aggregates
        self._window_samples: float | None = None  # length of the latest window
        # Blocks received since the stream's buffer was last extended: joined to it
        # once per batch, not block by block (which copied the growing buffer each
        # time).  Kept here rather than in the (immutable) stream so that a block
        # that completes no batch costs an append, not a new stream object.
        self._pending: list[NDArray[np.float64]] = []
        self._pending_samples = 0
        # known to miss no sample (a batch then does not look): the pending blocks,
        # and the stream's buffer
        self._pending_clean = True
        self._buffer_clean = True
        self._due: float | None = None  # cache of _aggregate_due until the next batch
        self._caps = capabilities
        f_nom = float(nominal_frequency_hz or capabilities.nominal_frequency_hz)
        if f_nom not in _CYCLES_PER_INTERVAL:
            raise ValueError(f"nominal_frequency_hz: must be 50 or 60, got {f_nom}")
        self._f_nom = f_nom
        self._cycles = _CYCLES_PER_INTERVAL[f_nom]
        self._cycles_name = "150c" if f_nom == 50.0 else "180c"
        allowed = {"basic", "150c", "180c", "10min", "2h"}
        bad = [a for a in aggregations if a not in allowed]
        if bad:
            raise ValueError(f"aggregations: unknown {bad}; expected some of {sorted(allowed)}")
        self._emit = {("150c" if a == "180c" else a) for a in aggregations}
        channels = capabilities.channels
        voltages = [k for k, c in enumerate(channels) if c.quantity is Quantity.VOLTAGE]
        if reference_channel is None:
            self._ref: int | None = voltages[0] if voltages else None
        else:
            self._ref = capabilities.index(reference_channel)
            if channels[self._ref].quantity is not Quantity.VOLTAGE:
                raise ValueError(
                    f"reference_channel: {reference_channel!r} is not a voltage channel"
                )
        self._topo, initial_energy = build_topology(capabilities, circuits, energy_start or {})
        self._import_wh = initial_energy[:, 0].copy()
        self._export_wh = initial_energy[:, 1].copy()
        self._kernel = interpolation_kernel()
        # compiled (or loaded from numba's cache) now rather than at the first block
        resample.compile_loops(len(capabilities.channels))
        harmonics.compile_loops()
        rms.compile_loops()
        interval.compile_loops()
        zero_crossing.compile_loops()
        agg.compile_loops()
        records.compile_loops()
        unbalance.compile_loops()
        self._configs: dict[float, _StreamConfig] = {}
        self._stream: _Stream | None = None
        self._aggs = _Aggregators()
        self._disturbed: list[tuple[int, int]] = []
        self._crossings_ns: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._orders = 0  # harmonic orders of the latest stream
        self._frequency_hz: float | None = None
        layout = self._topo.layout
        self._frequency_cells: tuple[NDArray[np.intp], int] | None = None
        if "frequency_hz" in layout.index:
            rows = [r for r, spec in enumerate(layout.records) if "frequency_hz" in spec.names]
            self._frequency_cells = (np.asarray(rows, dtype=np.intp), layout.col("frequency_hz"))

    # ------------------------------------------------------------------ setup

    def _config(self, fs_hz: float) -> _StreamConfig:
        cached = self._configs.get(fs_hz)
        if cached is not None:
            return cached
        if not fs_hz > 0:
            raise ValueError(f"block.fs_hz: must be > 0, got {fs_hz}")
        spc = fs_hz / self._f_nom
        if fs_hz < min_sample_rate_hz(self._f_nom):
            # the fundamental itself would be outside the interpolator's pass
            # band: a 10-cycle window holds ~20 incoherent samples and its RMS
            # would be off by +-10 %; such sources aggregate incoherently over
            # minutes (collector.sources.hardware.slow_adc)
            raise ValueError(
                f"block.fs_hz: {fs_hz:g} Hz is {spc:.2f} samples per cycle; basic-interval "
                f"metrics need at least {min_sample_rate_hz(self._f_nom):.1f} Hz"
            )
        m = synchronous_samples_per_cycle(fs_hz, self._f_nom)
        detector = None
        if self._ref is not None and fs_hz > 3.2 * self._f_nom:
            ref = self._caps.channels[self._ref]
            hysteresis = 0.0
            if self._caps.nominal_voltage_v:
                hysteresis = _HYSTERESIS_OF_NOMINAL * math.sqrt(2.0) * self._caps.nominal_voltage_v
            elif ref.full_scale:
                hysteresis = _HYSTERESIS_OF_FULL_SCALE * ref.full_scale
            detector = crossing_detector(fs_hz, self._f_nom, hysteresis, ref.skew_s)
        margin = self._kernel.taps / 2 + 2
        settle = detector.settle_samples if detector else 0
        chans = self._caps.channels
        orders = harmonic_max_order(fs_hz, self._f_nom, m)
        interval = IntervalConfig(
            fs_hz=fs_hz,
            cycles=self._cycles,
            n_out=m * self._cycles,
            harmonic_orders=orders,
            kernel=self._kernel,
            time_domain=spc >= _TIME_DOMAIN_MIN_SPC,
            max_gap=max_gap_samples(spc),
            skew_s=np.asarray([c.skew_s for c in chans], dtype=np.float64),
            full_scale=np.asarray(
                [np.inf if c.full_scale is None else c.full_scale for c in chans]
            ),
            clip_known=np.asarray([c.full_scale is not None for c in chans]),
        )
        cfg = _StreamConfig(
            interval=interval,
            detector=detector,
            framing=framing_config(fs_hz, self._f_nom, self._cycles, margin, max(settle, margin)),
        )
        self._configs[fs_hz] = cfg
        return cfg

    # ------------------------------------------------------------- streaming

    @property
    def crossings_ns(self) -> NDArray[np.int64]:
        """Positive-going crossings of the reference found by the last call [ns since epoch].

        Feed them to :func:`collector.dsp.frequency.ten_second_frequency` for
        the IEC 61000-4-30 Class A 10-s frequency.
        """
        return self._crossings_ns

    @property
    def crossings_horizon_ns(self) -> int | None:
        """Every crossing before this time has been reported [ns since epoch].

        The horizon to pass to ``ten_second_frequency`` with ``crossings_ns``:
        a crossing between a block's last sample and the next block's first is
        only found with the next block.  None before the first block.
        """
        stream = self._stream
        if stream is None or stream.crossing is None or stream.config.detector is None:
            return None
        det = stream.config.detector
        # a crossing not yet found lies after the last sample seen, shifted
        # like every crossing by the filter delay and the channel skew
        pos = stream.crossing.samples_seen - 1 - det.delay_samples + det.skew_s * det.fs_hz
        return stream.t0_ns + math.floor(pos * NS_PER_S / det.fs_hz)

    @property
    def frequency_hz(self) -> float | None:
        """Frequency of the latest basic interval that has one [Hz]; None before the
        first (kept across gaps). Read from the values, without making a record's
        fields Python objects."""
        return self._frequency_hz

    @property
    def harmonic_orders(self) -> int | None:
        """Highest harmonic order of the current stream (None before the first block)."""
        return None if self._stream is None else self._stream.config.interval.harmonic_orders

    def process(
        self,
        block: Block,
        disturbed: Sequence[tuple[int, int]] = (),
        *,
        has_nan: bool | None = None,
    ) -> list[Metrics]:
        """Consume one block; return the metrics of every interval completed in it.

        With ``batch_s > 0``, intervals are returned with the block that
        completes a batch instead.

        Parameters
        ----------
        block : Block
            Samples of all channels, rows in capability order.
        disturbed : Sequence[tuple[int, int]]
            [start_ns, end_ns) ranges in which an event detector saw a dip,
            swell or interruption; intervals overlapping any range given so
            far are flagged.
        has_nan : bool | None
            Whether the block misses a sample, when the caller knows (the
            pipeline does); None to look in each batch.
        """
        n_ch = len(self._caps.channels)
        if block.samples.ndim != 2 or block.samples.shape[0] != n_ch:
            raise ValueError(
                f"block.samples: expected shape ({n_ch}, n), got {block.samples.shape}"
            )
        for start, end in disturbed:
            if end < start:
                raise ValueError(f"disturbed: range ({start}, {end}) ends before it starts")
            self._disturbed.append((int(start), int(end)))
        out: list[Metrics] = []
        self._crossings_ns = _NO_CROSSINGS
        stream = self._stream
        if stream is None or not block.contiguous or block.fs_hz != stream.config.fs_hz:
            out.extend(self._advance(force=True))
            out.extend(self._restart())
            cfg = self._config(float(block.fs_hz))
            self._orders = cfg.interval.harmonic_orders
            stream = _Stream(
                config=cfg,
                t0_ns=block.t0_ns,
                origin=0,
                buffer=np.empty((n_ch, 0)),
                crossing=initial_crossing_state(cfg.detector) if cfg.detector else None,
                framing=FramingState(),
            )
            self._stream = stream
        samples = np.asarray(block.samples, dtype=np.float64)
        self._pending.append(samples)
        self._pending_samples += samples.shape[1]
        self._pending_clean = self._pending_clean and has_nan is False
        out.extend(self._advance(force=False))
        self._prune_disturbed()
        return out

    def _advance(self, force: bool) -> list[Metrics]:
        """Find crossings and measure the windows in the samples not examined yet.

        Waits until ``batch_s`` of signal is pending unless ``force``.
        """
        stream = self._stream
        if stream is None:
            return []
        cfg = stream.config
        end = stream.origin + int(stream.buffer.shape[1]) + self._pending_samples
        pending = end - stream.detected
        if pending <= 0:
            return []
        if not force and pending < self._batch_s * cfg.fs_hz:
            if self._due is None:
                self._due = self._aggregate_due(stream)
            if end < self._due:
                return []
        self._due = None  # the batch moves the boundary and the aggregate on
        if self._pending:
            parts = [stream.buffer, *self._pending] if stream.buffer.size else self._pending
            joined = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            self._buffer_clean = self._pending_clean and (
                self._buffer_clean or not stream.buffer.size
            )
            stream = replace(stream, buffer=joined)
            self._pending = []
            self._pending_samples = 0
            self._pending_clean = True
        new = stream.buffer[:, stream.detected - stream.origin :]
        crossing = stream.crossing
        found = np.empty(0)
        if cfg.detector is not None and crossing is not None and self._ref is not None:
            found, crossing = positive_crossings(new[self._ref], crossing, cfg.detector)
        found_ns = stream.t0_ns + np.rint(found * (NS_PER_S / cfg.fs_hz)).astype(np.int64)
        self._crossings_ns = np.concatenate([self._crossings_ns, found_ns])
        windows, framing = frame_windows(found, float(end - 1), stream.framing, cfg.framing)
        stream = replace(stream, crossing=crossing, framing=framing, detected=end)
        out: list[Metrics] = []
        # a long stretch (a replayed file) is measured a few seconds at a time
        # so that the resampled windows stay small in memory
        for lo in range(0, len(windows), _WINDOWS_PER_BATCH):
            batch = windows[lo : lo + _WINDOWS_PER_BATCH]
            out.extend(self._process_windows(stream, batch))
            stream = replace(stream, windows_done=stream.windows_done + len(batch))
        # keep what the next windows (and their kernel support) still need
        keep_from = stream.origin
        if framing.boundary is not None:
            keep_from = max(stream.origin, math.floor(framing.boundary) - self._kernel.taps)
        drop = keep_from - stream.origin
        if drop > 0:
            stream = replace(stream, origin=keep_from, buffer=stream.buffer[:, drop:])
        self._stream = stream
        return out

    def _aggregate_due(self, stream: _Stream) -> float:
        """Stream index from which the running 150/180-cycle aggregate can be closed.

        Predicted from the next window's start, the windows the aggregate still
        needs and the length of the latest window (the frequency moves slowly),
        plus the samples framing needs beyond a window's end.  Infinite when
        batches are not cut at aggregates; before the first window, one
        window's worth of signal.
        """
        if not self._batch_to_aggregates:
            return math.inf
        framing = stream.config.framing
        length = self._window_samples or framing.cycles * framing.period_samples
        boundary = stream.framing.boundary
        if boundary is None:
            # no window yet: look for the first ones as soon as one can be
            # there, so that the next batch knows where the aggregate ends
            return stream.detected + length + framing.margin_samples
        acc = self._aggs.cycles.acc
        windows = agg.INTERVALS_PER_AGGREGATE - (acc.count if acc else 0)
        # the interval that holds a 10-min tick closes the aggregate early
        samples_per_ns = stream.config.fs_hz / NS_PER_S
        boundary_ns = stream.t0_ns + math.floor(boundary / samples_per_ns)
        tick_ns = (boundary_ns // agg.TEN_MINUTES_NS + 1) * agg.TEN_MINUTES_NS
        tick = (tick_ns - stream.t0_ns) * samples_per_ns
        windows = min(windows, math.floor((tick - boundary) / length) + 1)
        # framing needs margin_samples after the window's end; 0.1 % of slack
        # covers the frequency drifting while the aggregate fills (a batch cut
        # early leaves its last interval to a small batch of its own)
        span = windows * length
        return boundary + 1.001 * span + framing.margin_samples + 1.0

    def flush(self) -> list[Metrics]:
        """End of stream: measure what is pending, emit the running aggregates.

        The aggregates are marked incomplete.  Samples after the last complete
        basic interval are discarded; the next block starts a new stream.
        """
        self._crossings_ns = _NO_CROSSINGS
        out = self._advance(force=True)
        out.extend(self._restart())
        done_10, self._aggs.ten_min = agg.close_clock(self._aggs.ten_min, self._topo.layout.plan)
        out.extend(self._emit_ten_minutes(done_10))
        done_2h, self._aggs.two_hour = agg.close_clock(self._aggs.two_hour, self._topo.layout.plan)
        out.extend(self._emit_aggregates(done_2h, "2h"))
        self._stream = None
        return out

    def _restart(self) -> list[Metrics]:
        """Close what cannot continue across a gap: the 150/180-cycle aggregate."""
        done, self._aggs.cycles = agg.close_cycles(self._aggs.cycles, self._topo.layout.plan)
        self._stream = None
        # (a forced _advance has consumed them; empty blocks may be left)
        self._pending = []
        self._pending_samples = 0
        self._pending_clean = self._buffer_clean = True  # nothing is held
        self._due = None
        self._window_samples = None  # the next stream may run at another rate
        return self._emit_aggregates(done, self._cycles_name)

    # ------------------------------------------------------------ computing

    def _process_windows(self, stream: _Stream, windows: Windows) -> list[Metrics]:
        cfg = stream.config.interval
        taps = self._kernel.taps
        lo = math.floor(windows.start[0]) - taps // 2 - 1
        hi = math.floor(windows.end[-1]) + taps // 2 + 2
        x = stream.buffer[:, lo - stream.origin : hi - stream.origin]
        has_nan = False if self._buffer_clean else None  # None: look
        m = measure_channels(x, windows.start - lo, windows.end - lo, cfg, has_nan=has_nan)
        self._window_samples = float(windows.end[-1] - windows.start[-1])
        values, self._import_wh, self._export_wh = interval_values(
            m, windows.locked, self._topo, cfg, self._import_wh, self._export_wh
        )
        ns_per_sample = NS_PER_S / cfg.fs_hz
        starts_ns = stream.t0_ns + np.rint(windows.start * ns_per_sample).astype(np.int64)
        ends_ns = stream.t0_ns + np.rint(windows.end * ns_per_sample).astype(np.int64)
        return self._emit_windows(
            values, starts_ns.tolist(), ends_ns.tolist(), stream.windows_done == 0
        )

    # -------------------------------------------------------------- emitting

    def _overlaps_disturbance(self, start_ns: int, end_ns: int) -> bool:
        return any(s < end_ns and e > start_ns for s, e in self._disturbed)

    def _emit_windows(
        self,
        values: NDArray[np.float64],
        starts: list[int],
        ends: list[int],
        first_is_restart: bool,
    ) -> list[Metrics]:
        layout = self._topo.layout
        n_w = len(starts)
        if self._frequency_cells is not None and n_w:
            rows, col = self._frequency_cells
            found = values[::-1, rows, col].ravel()  # the latest interval first
            finite = np.flatnonzero(np.isfinite(found))
            if finite.size:
                self._frequency_hz = float(found[finite[0]])
        flagged = [self._overlaps_disturbance(t0, t1) for t0, t1 in zip(starts, ends, strict=True)]
        # the running-sum terms of every window at once; both aggregators use them
        batch = agg.ConstituentBatch(
            values=values,
            contribution=agg.contribution(values, layout.plan),
            start_ns=starts,
            end_ns=ends,
            flagged=flagged,
            contiguous=[not (first_is_restart and w == 0) for w in range(n_w)],
            complete=[True] * n_w,
        )
        cycles, self._aggs.cycles = agg.aggregate_cycles_batch(
            batch, self._aggs.cycles, layout.plan
        )
        ten_min, self._aggs.ten_min = agg.aggregate_clock_batch(
            batch, self._aggs.ten_min, layout.plan, agg.TEN_MINUTES_NS
        )
        # records in interval order: each basic interval, then what it completed
        closed: dict[int, tuple[list[agg.Aggregate], list[agg.Aggregate]]] = {}
        for w, a in cycles:
            closed.setdefault(w, ([], []))[0].append(a)
        for w, a in ten_min:
            closed.setdefault(w, ([], []))[1].append(a)
        out: list[Metrics] = []
        for w in range(n_w):
            if "basic" in self._emit:
                out.extend(to_metrics(values[w], layout, starts[w], "basic", flagged[w]))
            if w in closed:
                done_cycles, done_ten = closed[w]
                out.extend(self._emit_aggregates(done_cycles, self._cycles_name))
                out.extend(self._emit_ten_minutes(done_ten))
        return out

    def _emit_ten_minutes(self, done: list[agg.Aggregate]) -> list[Metrics]:
        out = self._emit_aggregates(done, "10min")
        layout = self._topo.layout
        for a in done:
            c = agg.Constituent(
                values=self._derived(a),
                start_ns=a.label_ns,
                end_ns=a.label_ns + agg.TEN_MINUTES_NS,
                flagged=a.flagged,
                contiguous=a.complete,
                complete=a.complete,
            )
            done_2h, self._aggs.two_hour = agg.aggregate_clock(
                c, self._aggs.two_hour, layout.plan, agg.TWO_HOURS_NS
            )
            out.extend(self._emit_aggregates(done_2h, "2h"))
        return out

    def _derived(self, a: agg.Aggregate) -> NDArray[np.float64]:
        values = a.values.copy()
        # the aggregated harmonics_max_order is the lowest of the constituents
        col = self._topo.layout.index.get("harmonics_max_order")
        orders = self._orders
        if col is not None:
            lowest = np.nanmin(values[:, col]) if not np.isnan(values[:, col]).all() else orders
            orders = min(orders, int(lowest))
        derive(values, self._topo.layout, orders)
        return values

    def _emit_aggregates(self, done: list[agg.Aggregate], interval: str) -> list[Metrics]:
        if not done:
            return []
        key = "150c" if interval in ("150c", "180c") else interval
        out: list[Metrics] = []
        for a in done:
            if key not in self._emit:
                continue
            values = self._derived(a)
            flagged = a.flagged or self._overlaps_disturbance(a.start_ns, a.end_ns)
            count_col = self._topo.layout.index[COUNT]
            counts = values[:, count_col]
            extra: dict[str, float | int | bool | str | None] = {
                INTERVAL_COMPLETE: a.complete,
                BASIC_INTERVALS: int(np.nanmax(counts)) if counts.size else 0,
            }
            out.extend(to_metrics(values, self._topo.layout, a.label_ns, interval, flagged, extra))
        return out

    def _prune_disturbed(self) -> None:
        if not self._disturbed:
            return
        open_starts = [
            s.acc.start_ns
            for s in (self._aggs.cycles, self._aggs.ten_min, self._aggs.two_hour)
            if s.acc is not None
        ]
        stream = self._stream
        if stream is not None and stream.framing.boundary is not None:
            cfg = stream.config
            open_starts.append(stream.t0_ns + round(stream.framing.boundary * NS_PER_S / cfg.fs_hz))
        if not open_starts:
            return
        earliest = min(open_starts)
        self._disturbed = [(s, e) for s, e in self._disturbed if e > earliest]
