"""SimulatedSource: a virtual switchboard that yields blocks like a real converter would.

How a block is made (all of it a pure function of the sample index, so any block
size gives bit-identical samples):

1. The run is cut at breakpoints (a load switching, a disturbance starting or
   ending). Each steady state between breakpoints is solved in harmonic phasors
   (:mod:`.state`) and turned into one-period lookup tables, already in converter
   counts, cached per state.
2. Each sample's phase comes from the accumulated cycle count of the frequency
   track (:mod:`.mains`); the tables are read with linear interpolation (4096
   points per period: the interpolation error is < 3e-7 of the fundamental and
   < 1e-3 of a 50th harmonic).
3. Decaying motor inrush and arc bursts are added where they occur; noise (a
   seeded table read at a per-period offset) is added; the sum is rounded to codes
   and saturated at full scale, then scaled to physical units.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from collector.config.errors import format_path
from collector.model import NS_PER_S, Block, ChannelInfo, Quantity, SourceCapabilities
from collector.sources.simulated.adc import (
    Sampling,
    channel_errors,
    lsb,
    multiplexer_skew_s,
    noise_table,
    quantise_counts,
    representable_full_scale,
)
from collector.sources.simulated.arcing import (
    burst_envelope,
    shoulder_mask,
    uniform_hash,
    zero_crossing_cycles,
)
from collector.sources.simulated.disturbances import (
    Arcing,
    Disturbance,
    FrequencyExcursion,
    SensorFault,
    SensorFaultKind,
    VoltageChange,
    disturbance_type,
    reference_problems,
)
from collector.sources.simulated.mains import (
    STREAM_ADC_ERRORS,
    STREAM_ARC,
    STREAM_NOISE,
    Cycles,
    Excursion,
    FrequencyTrack,
)
from collector.sources.simulated.panel import PanelSpec
from collector.sources.simulated.spectra import (
    SQRT2,
    ComplexArray,
    FloatArray,
    phasors_from_table,
    table_from_phasors,
)
from collector.sources.simulated.state import (
    CompiledPanel,
    Solution,
    compile_panel,
    inrush_phasors,
    solve,
)
from collector.sources.simulated.truth import PanelTruth, panel_truth

if TYPE_CHECKING:  # scenario.py pulls in the config package; import it only when used
    from collector.sources.simulated.scenario import Scenario

DEFAULT_START_NS = 1_704_067_200 * NS_PER_S  # 2024-01-01T00:00:00Z: runs are reproducible
DEFAULT_BLOCK_DURATION_S = 0.1
DEFAULT_SYNTHESIS_CHUNK_S = 0.5  # blocks are rendered this many seconds at a time
TABLE_POINTS = 4096
NOISE_SAMPLES = 1 << 15  # 5 s at 6.4 kS/s; read at a hashed offset per period, so no repeat
INRUSH_WINDOW_TAU = 10.0  # followed for 10 τ: the part cut off is < 3e-4 of the running current
_TABLE_CACHE_SIZE = 32

Counts = NDArray[np.floating[Any]]  # converter counts, float32 or float64


@dataclass(frozen=True, slots=True)
class ScheduledDisturbance:
    """A disturbance with its resolved sample window ``start_n .. end_n - 1``."""

    index: int
    disturbance: Disturbance
    start_n: int
    end_n: int
    fs_hz: float

    @property
    def start_s(self) -> float:
        return self.start_n / self.fs_hz

    @property
    def end_s(self) -> float:
        return self.end_n / self.fs_hz

    @property
    def label(self) -> str:
        return f"{disturbance_type(self.disturbance)}#{self.index}"


@dataclass(frozen=True, slots=True)
class _Schedule:
    circuit_index: int
    period_n: int
    on_n: int
    offset_n: int

    def is_on(self, n: int) -> bool:
        return (n - self.offset_n) % self.period_n < self.on_n

    def next_edge(self, n: int) -> int | None:
        """First switching sample after ``n``."""
        if self.on_n in (0, self.period_n):
            return None
        k = (n - self.offset_n) // self.period_n
        base = self.offset_n + k * self.period_n
        candidates = [e for e in (base + self.on_n, base + self.period_n) if e > n]
        return min(candidates)


@dataclass(frozen=True, slots=True)
class _Arc:
    row: int
    zero_cycles: float
    shoulder_cycles: float
    probability: float
    amplitude_counts: float
    key: int


@dataclass(slots=True)
class _Tables:
    """One steady state, ready to render: tables in counts and what else applies."""

    values: Counts  # (TABLE_POINTS, R) in counts
    steps: Counts  # (TABLE_POINTS, R): difference to the next table point
    rows: ComplexArray  # physical phasors (arc shoulders included): the truth
    solution: Solution
    col_scale: FloatArray  # counts per physical unit, per row (gain error, sensor faults)
    clip_free: bool  # no sample of this state can reach full scale
    arcs: tuple[_Arc, ...]
    stuck: tuple[tuple[int, int], ...]  # (row, disturbance index)
    inrush: dict[int, tuple[ComplexArray, ComplexArray]] = field(default_factory=dict)


@dataclass(slots=True)
class _SegmentCache:
    start: int = -1
    end: int | None = -1
    key: tuple[tuple[bool, ...], tuple[int, ...]] = ((), ())


class SimulatedSource:
    """A simulated panel as a waveform :class:`~collector.model.Source`.

    Parameters
    ----------
    panel : PanelSpec
    disturbances : sequence of Disturbance
        Scheduled events (see :mod:`.disturbances`), in scenario order.
    seed : int
        Seed of every random part (noise, frequency walk, converter errors, arcs).
    duration_s : float | None
        Length of the run [s]; None: blocks forever.
    block_duration_s : float
        Duration of each yielded block [s] (rounded to whole samples).
    start_ns : int
        Timestamp of sample 0 [ns since epoch, UTC].
    synthesis_chunk_s : float
        How much is rendered at once (performance only; the samples do not depend on it).
    """

    def __init__(
        self,
        panel: PanelSpec,
        *,
        disturbances: Sequence[Disturbance] = (),
        seed: int = 0,
        duration_s: float | None = None,
        block_duration_s: float = DEFAULT_BLOCK_DURATION_S,
        start_ns: int = DEFAULT_START_NS,
        synthesis_chunk_s: float = DEFAULT_SYNTHESIS_CHUNK_S,
    ) -> None:
        if duration_s is not None and not duration_s > 0:
            raise ValueError(f"duration_s: must be > 0 or None, got {duration_s}")
        if not block_duration_s > 0:
            raise ValueError(f"block_duration_s: must be > 0, got {block_duration_s}")
        if not synthesis_chunk_s > 0:
            raise ValueError(f"synthesis_chunk_s: must be > 0, got {synthesis_chunk_s}")
        if seed < 0:
            raise ValueError(f"seed: must be >= 0, got {seed}")
        problems = reference_problems(panel, disturbances)
        if problems:
            raise ValueError(
                "; ".join(f"{format_path(p.loc)}: {p.message}, got {p.got}" for p in problems)
            )
        self._spec = panel
        self._panel = compile_panel(panel)
        self._disturbances = tuple(disturbances)
        self._seed = seed
        self._fs = panel.sample_rate_hz
        self._start_ns = start_ns
        self._n_block = max(1, round(block_duration_s * self._fs))
        self._chunk_blocks = max(1, round(synthesis_chunk_s / (self._n_block / self._fs)))
        self._total = None if duration_s is None else max(1, round(duration_s * self._fs))
        self._closed = False
        ratio = Fraction(NS_PER_S) / Fraction(self._fs)  # exact: a float is a rational
        self._ns_per_sample = (ratio.numerator, ratio.denominator)

        adc = panel.adc
        rows = self._panel.rows
        n_rows = len(rows)
        self._lsb = np.array([lsb(r.full_scale, adc.bits) for r in rows])
        self._code_max = adc.code_max
        self._gain, offsets = channel_errors(
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_ADC_ERRORS,))),
            n_rows,
            adc,
        )
        sigma = np.full(n_rows, adc.noise_lsb)
        for k, r in enumerate(rows):
            if r.quantity is Quantity.VOLTAGE:
                sigma[k] = math.hypot(adc.noise_lsb, panel.mains.noise_v / self._lsb[k])
        noise_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_NOISE,)))
        # Counts are synthesised in float32 up to 20 bits (resolution better than 1/16 LSB
        # at full scale, halving memory traffic) and scaled to volts/amps in float64.
        self._dtype: type[np.floating[Any]] = np.float32 if adc.bits <= 20 else np.float64
        noise64 = noise_table(noise_rng, NOISE_SAMPLES, sigma, offsets)
        self._noise_max = np.max(np.abs(noise64), axis=0)
        self._noise: Counts = noise64.astype(self._dtype)
        arc_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_ARC,)))
        self._aux_noise = arc_rng.standard_normal(NOISE_SAMPLES)
        self._skew = multiplexer_skew_s(n_rows, self._fs, adc.sampling)
        self._multiplexed = adc.sampling is Sampling.MULTIPLEXED
        self._skew_dtype = self._skew.astype(self._dtype)

        nominal = panel.mains.nominal_frequency_hz
        self._track = FrequencyTrack(
            nominal_hz=nominal,
            drift_bound_hz=panel.mains.frequency_drift_hz,
            walk_hz_per_sqrt_s=panel.mains.frequency_walk_hz_per_sqrt_s,
            fs_hz=self._fs,
            seed=seed,
            excursions=tuple(
                Excursion(d.at_s, d.at_s + d.duration_s, d.frequency_hz - nominal, d.rocof_hz_per_s)
                for d in self._disturbances
                if isinstance(d, FrequencyExcursion)
            ),
        )
        self._scheduled = tuple(self._resolve(k, d) for k, d in enumerate(self._disturbances))
        self._event_edges = sorted({e for s in self._scheduled for e in (s.start_n, s.end_n)})
        self._schedules = tuple(
            _Schedule(
                ci,
                max(1, round(c.schedule.period_s * self._fs)),
                round(c.schedule.on_s * self._fs),
                round(c.schedule.offset_s * self._fs),
            )
            for ci, c in enumerate(panel.circuits)
            if c.schedule is not None
        )
        self._clip_gain = self._clipping_gains()
        self._tables: dict[tuple[tuple[bool, ...], tuple[int, ...]], _Tables] = {}
        self._segment_cache = _SegmentCache()
        self._stuck_values: dict[tuple[int, int], float] = {}
        self._noise_offsets: dict[int, int] = {}
        self._capabilities = self._make_capabilities()

    # --- construction helpers -------------------------------------------------------

    @classmethod
    def from_scenario(
        cls,
        scenario: str | Path | Scenario,
        *,
        sample_rate_hz: float | None = None,
        seed: int | None = None,
        duration_s: float | Literal["scenario"] | None = "scenario",
        block_duration_s: float = DEFAULT_BLOCK_DURATION_S,
        start_ns: int = DEFAULT_START_NS,
        synthesis_chunk_s: float = DEFAULT_SYNTHESIS_CHUNK_S,
    ) -> SimulatedSource:
        """A source from a scenario file (path) or an already loaded :class:`Scenario`.

        ``sample_rate_hz`` and ``seed`` override the scenario's when given;
        ``duration_s`` keeps the scenario's unless given (None: run forever).
        Raises :class:`~collector.config.errors.ConfigError` for an invalid file.
        """
        from collector.sources.simulated.scenario import Scenario as _Scenario
        from collector.sources.simulated.scenario import load_scenario

        loaded = scenario if isinstance(scenario, _Scenario) else load_scenario(scenario)
        panel = loaded.panel
        if sample_rate_hz is not None:
            panel = replace(panel, sample_rate_hz=float(sample_rate_hz))
        return cls(
            panel,
            disturbances=loaded.disturbances,
            seed=loaded.seed if seed is None else seed,
            duration_s=loaded.duration_s if duration_s == "scenario" else duration_s,
            block_duration_s=block_duration_s,
            start_ns=start_ns,
            synthesis_chunk_s=synthesis_chunk_s,
        )

    def _resolve(self, index: int, d: Disturbance) -> ScheduledDisturbance:
        fs = self._fs
        # a time given to the microsecond should not slip a sample through float rounding
        start = max(0, math.ceil(d.at_s * fs - 1e-6))
        if isinstance(d, VoltageChange) and d.onset_deg is not None:
            start = self._onset_sample(start, d)
        length = max(1, round(d.duration_s * fs))
        return ScheduledDisturbance(index, d, start, start + length, fs)

    def _onset_sample(self, n_at: int, d: VoltageChange) -> int:
        """First sample at or after ``n_at`` where the affected phase has passed ``onset_deg``."""
        assert d.onset_deg is not None
        phase = (d.phases or self._panel.phases)[0]
        lag = self._panel.lags[self._panel.phases.index(phase)]
        per_cycle = self._fs / self._spec.mains.nominal_frequency_hz
        lo = max(0, n_at - 1)
        hi = n_at + math.ceil(1.5 * per_cycle) + 2
        frac = self._track.cycles(lo, hi).frac
        angle = np.mod(frac - lag - d.onset_deg / 360.0, 1.0)
        if n_at == 0 and angle[0] == 0.0:
            return 0
        wraps = np.nonzero(angle[1:] < angle[:-1])[0]
        return int(lo + 1 + wraps[0])

    def _clipping_gains(self) -> FloatArray:
        """Gain that makes a 'clipping' sensor fault drive a channel to twice its full scale
        at the channel's nominal (everything on, undisturbed) peak."""
        sol = solve(self._panel, [True] * len(self._panel.circuits), ())
        peaks = np.max(np.abs(table_from_phasors(sol.rows, TABLE_POINTS)), axis=0)
        fs = np.array([r.full_scale for r in self._panel.rows])
        out: FloatArray = np.where(peaks > 0, 2.0 * fs / np.maximum(peaks, 1e-30), 1.0)
        return np.maximum(out, 1.0)

    def _make_capabilities(self) -> SourceCapabilities:
        bits = self._spec.adc.bits
        rate = self._fs
        channels = tuple(
            ChannelInfo(
                id=r.channel_id,
                quantity=r.quantity,
                phase=r.phase,
                circuit=r.circuit,
                rate_hz=rate,
                skew_s=float(self._skew[k]),
                resolution=float(self._lsb[k]),
                full_scale=representable_full_scale(r.full_scale, bits),
            )
            for k, r in enumerate(self._panel.rows)
        )
        return SourceCapabilities(
            channels=channels,
            simultaneous=not self._multiplexed,
            waveform=True,
            nominal_frequency_hz=self._spec.mains.nominal_frequency_hz,
            nominal_voltage_v=self._spec.mains.nominal_voltage_v,
        )

    # --- Source protocol ------------------------------------------------------------

    @property
    def capabilities(self) -> SourceCapabilities:
        return self._capabilities

    @property
    def panel(self) -> PanelSpec:
        """The simulated installation (circuits with breaker ratings and critical flags)."""
        return self._spec

    @property
    def scheduled(self) -> tuple[ScheduledDisturbance, ...]:
        """Disturbances with their resolved sample windows."""
        return self._scheduled

    @property
    def compiled(self) -> CompiledPanel:
        return self._panel

    def blocks(self) -> Iterator[Block]:
        """Blocks from the start of the run, as fast as they can be computed."""
        n_block = self._n_block
        chunk = n_block * self._chunk_blocks
        n = 0
        first = True
        while not self._closed and (self._total is None or n < self._total):
            n_end = n + chunk if self._total is None else min(n + chunk, self._total)
            codes = self._render_codes(n, n_end)
            whole, rest = divmod(n_end - n, n_block)
            # one transposing copy (to float64) for all whole blocks of the chunk: each
            # block is then a C-contiguous (channels, samples) slab of one array
            n_rows = codes.shape[1]
            slabs = np.empty((whole, n_rows, n_block))
            np.multiply(
                codes[: whole * n_block].reshape(whole, n_block, n_rows).transpose(0, 2, 1),
                self._lsb[None, :, None],
                out=slabs,
            )
            parts = [slabs[k] for k in range(whole)]
            if rest:
                tail = np.ascontiguousarray(codes[whole * n_block :].T, dtype=np.float64)
                tail *= self._lsb[:, None]
                parts.append(tail)
            for k, samples in enumerate(parts):
                yield Block(self._t0_ns(n + k * n_block), self._fs, samples, contiguous=not first)
                first = False
                if self._closed:
                    return
            n = n_end

    def close(self) -> None:
        self._closed = True

    def _t0_ns(self, n: int) -> int:
        # exact integer arithmetic: n·1e9/fs in floats loses nanoseconds after ~1e7 samples
        num, den = self._ns_per_sample
        return self._start_ns + (2 * n * num + den) // (2 * den)

    # --- segments and states --------------------------------------------------------

    def _state_key(self, n: int) -> tuple[tuple[bool, ...], tuple[int, ...]]:
        on = [True] * len(self._panel.circuits)
        for s in self._schedules:
            on[s.circuit_index] = s.is_on(n)
        active = tuple(s.index for s in self._scheduled if s.start_n <= n < s.end_n)
        return tuple(on), active

    def _next_break(self, n: int) -> int | None:
        best: int | None = None
        k = bisect.bisect_right(self._event_edges, n)
        if k < len(self._event_edges):
            best = self._event_edges[k]
        for s in self._schedules:
            e = s.next_edge(n)
            if e is not None and (best is None or e < best):
                best = e
        return best

    def _segment(self, n: int) -> tuple[tuple[tuple[bool, ...], tuple[int, ...]], int | None]:
        cache = self._segment_cache
        if cache.start <= n and (cache.end is None or n < cache.end):
            return cache.key, cache.end
        key = self._state_key(n)
        end = self._next_break(n)
        cache.start, cache.end, cache.key = n, end, key
        return key, end

    def _tables_for(self, key: tuple[tuple[bool, ...], tuple[int, ...]]) -> _Tables:
        cached = self._tables.get(key)
        if cached is not None:
            return cached
        tables = self._build_tables(key)
        if len(self._tables) >= _TABLE_CACHE_SIZE:
            self._tables.pop(next(iter(self._tables)))
        self._tables[key] = tables
        return tables

    def _build_tables(self, key: tuple[tuple[bool, ...], tuple[int, ...]]) -> _Tables:
        on, active = key
        panel = self._panel
        solution = solve(panel, on, [self._scheduled[i].disturbance for i in active])
        rows = solution.rows.copy()
        gain = np.ones(panel.n_rows)
        arcs: list[tuple[int, float, Arcing]] = []
        stuck: list[tuple[int, int]] = []
        for i in active:
            d = self._scheduled[i].disturbance
            if isinstance(d, Arcing):
                c = panel.circuits[panel.circuit_index(d.circuit)]
                for r in c.rows:
                    if abs(rows[r, 1]) == 0.0:
                        continue
                    wave = table_from_phasors(rows[r : r + 1], TABLE_POINTS)[:, 0]
                    peak = float(np.max(np.abs(wave)))
                    zc = zero_crossing_cycles(complex(rows[r, 1]))
                    wave[shoulder_mask(TABLE_POINTS, zc, d.shoulder_deg / 360.0)] = 0.0
                    # back to orders <= h_max: the shoulders as seen through the front
                    # end's anti-alias filter, and the truth describes exactly that
                    rows[r] = phasors_from_table(wave, panel.h_max)
                    arcs.append((r, peak, d))
            elif isinstance(d, SensorFault):
                r = panel.row_index(d.channel)
                if d.kind is SensorFaultKind.DISCONNECTED:
                    gain[r] = 0.0
                elif d.kind is SensorFaultKind.CLIPPING:
                    gain[r] *= self._clip_gain[r]
                else:
                    stuck.append((r, i))
        col_scale = self._gain / self._lsb * gain
        scaled = rows * col_scale[:, None]
        if self._multiplexed:
            # a row sampled skew_s late sees the waveform advanced by ω·skew_s (per order)
            orders = np.arange(panel.h_max + 1)
            w_nom = 2.0 * math.pi * self._spec.mains.nominal_frequency_hz
            scaled *= np.exp(1j * w_nom * self._skew[:, None] * orders[None, :])
        counts = table_from_phasors(scaled, TABLE_POINTS)
        values = counts.astype(self._dtype)
        steps = np.empty_like(values)
        np.subtract(counts[1:], counts[:-1], out=steps[:-1], casting="same_kind")
        np.subtract(counts[0], counts[-1], out=steps[-1], casting="same_kind")
        # |x| <= √2·Σ|X_h| for any waveform: a cheap bound that decides whether to clip
        bound = SQRT2 * np.sum(np.abs(rows), axis=1) * np.abs(col_scale) + self._noise_max
        arc_plans = tuple(
            _Arc(
                row=r,
                zero_cycles=zero_crossing_cycles(complex(solution.rows[r, 1])),
                shoulder_cycles=d.shoulder_deg / 360.0,
                probability=d.burst_probability,
                amplitude_counts=d.burst_pct / 100.0 * arc_peak * float(col_scale[r]),
                key=(self._seed * 1_000_003 + r) * 2,
            )
            for r, arc_peak, d in arcs
        )
        return _Tables(
            values=values,
            steps=steps,
            rows=rows,
            solution=solution,
            col_scale=col_scale,
            clip_free=bool(np.all(bound < self._code_max)),
            arcs=arc_plans,
            stuck=tuple(stuck),
        )

    # --- rendering ------------------------------------------------------------------

    def generate(self, n0: int, n1: int) -> NDArray[np.float64]:
        """Samples ``n0 .. n1-1`` of every channel, shape (n_channels, n1 - n0), physical units."""
        out = np.ascontiguousarray(self._render_codes(n0, n1).T, dtype=np.float64)
        out *= self._lsb[:, None]
        return out

    def _render_codes(self, n0: int, n1: int) -> Counts:
        """Converter codes of samples ``n0 .. n1-1``, shape (n1 - n0, n_channels)."""
        if not 0 <= n0 <= n1:
            raise ValueError(f"n0, n1: need 0 <= n0 <= n1, got {n0}, {n1}")
        cyc = self._track.cycles(n0, n1)
        segments: list[tuple[int, int, _Tables]] = []
        n = n0
        while n < n1:
            key, end = self._segment(n)
            e = n1 if end is None else min(end, n1)
            segments.append((n - n0, e - n0, self._tables_for(key)))
            n = e
        if len(segments) == 1:
            x = self._interpolate(segments[0][2], cyc, 0, n1 - n0)
        else:
            x = np.empty((n1 - n0, self._panel.n_rows), dtype=self._dtype)
            for a, b, tables in segments:
                x[a:b] = self._interpolate(tables, cyc, a, b)
        clip = False
        for a, b, tables in segments:
            clip = clip or not tables.clip_free
            for arc in tables.arcs:
                self._add_burst(arc, cyc, n0, a, b, x)
                clip = True
        if self._add_inrush(n0, n1, cyc, segments, x):
            clip = True
        self._add_noise(n0, n1, x)
        quantise_counts(x, self._code_max, clip=clip)
        for a, b, tables in segments:
            for r, i in tables.stuck:
                x[a:b, r] = self._stuck_code(i, r)
        return x

    def _interpolate(self, tables: _Tables, cyc: Cycles, a: int, b: int) -> Counts:
        """Table values at the phase of samples a..b-1 of the chunk, (b - a, R) counts."""
        if not self._multiplexed:
            pos = cyc.frac[a:b] * TABLE_POINTS
            i0 = pos.astype(np.intp)
            pos -= i0
            out = np.take(tables.values, i0, axis=0)
            step = np.take(tables.steps, i0, axis=0)
            step *= pos.astype(self._dtype)[:, None]
            out += step
            return out
        # Each row is sampled skew_s late, so its phase is ahead by f·skew. The tables
        # already hold the rows advanced by f_nominal·skew; what remains, (f - f_nom)·skew,
        # is under one table step (1 Hz off nominal, 150 µs skew: 0.6 step) and is taken
        # along the same interpolation segment.
        pos = cyc.frac[a:b] * TABLE_POINTS
        i0 = pos.astype(np.intp)
        pos -= i0
        off = cyc.freq_hz[a:b] - self._spec.mains.nominal_frequency_hz
        off *= TABLE_POINTS
        weight = off.astype(self._dtype)[:, None] * self._skew_dtype
        weight += pos.astype(self._dtype)[:, None]
        out = np.take(tables.values, i0, axis=0)
        step = np.take(tables.steps, i0, axis=0)
        step *= weight
        out += step
        return out

    def _row_phase_rad(self, cyc: Cycles, a: int, b: int, row: int) -> FloatArray:
        phase: FloatArray = cyc.frac[a:b] + cyc.freq_hz[a:b] * self._skew[row]
        return phase * (2.0 * math.pi)

    def _add_burst(self, arc: _Arc, cyc: Cycles, n0: int, a: int, b: int, x: Counts) -> None:
        env = burst_envelope(
            cyc.frac[a:b],
            cyc.whole[a:b],
            arc.zero_cycles,
            arc.shoulder_cycles,
            arc.probability,
            arc.key,
        )
        if not np.any(env):
            return
        noise = np.empty(b - a)
        for off, length, pos in self._noise_runs(n0 + a, n0 + b):
            noise[off : off + length] = self._aux_noise[pos : pos + length]
        x[a:b, arc.row] += env * noise * arc.amplitude_counts

    def _inrush_windows(self, n0: int, n1: int) -> list[tuple[int, int, int]]:
        """(circuit index, switch-on sample, window length) of inrushes overlapping n0..n1-1."""
        out: list[tuple[int, int, int]] = []
        for s in self._schedules:
            c = self._panel.circuits[s.circuit_index]
            if c.inrush_ratio == 0 or s.on_n == 0 or s.on_n == s.period_n:
                continue
            window = math.ceil(INRUSH_WINDOW_TAU * c.model.inrush_tau_s * self._fs)
            k = (n1 - 1 - s.offset_n) // s.period_n
            while True:
                edge = s.offset_n + k * s.period_n
                if edge < 0 or edge + window <= n0:
                    break
                if edge < n1:
                    out.append((s.circuit_index, edge, window))
                k -= 1
        return out

    def _inrush_for(self, tables: _Tables, ci: int) -> tuple[ComplexArray, ComplexArray]:
        cached = tables.inrush.get(ci)
        if cached is None:
            cached = inrush_phasors(self._panel, tables.solution, ci)
            tables.inrush[ci] = cached
        return cached

    def _add_inrush(
        self,
        n0: int,
        n1: int,
        cyc: Cycles,
        segments: list[tuple[int, int, _Tables]],
        x: Counts,
    ) -> bool:
        added = False
        panel = self._panel
        for ci, edge, window in self._inrush_windows(n0, n1):
            c = panel.circuits[ci]
            tau_n = c.model.inrush_tau_s * self._fs
            lo, hi = max(edge, n0) - n0, min(edge + window, n1) - n0
            for a, b, tables in segments:
                sa, sb = max(a, lo), min(b, hi)
                if sa >= sb:
                    continue
                extra, dv = self._inrush_for(tables, ci)
                if not np.any(extra):
                    continue
                decay = np.exp(-(np.arange(n0 + sa, n0 + sb) - edge) / tau_n)
                targets = [(r, e) for r, e in zip(c.rows, extra, strict=True)]
                targets += [(k, v) for k, v in enumerate(dv) if v != 0]
                for r, phasor in targets:
                    theta = self._row_phase_rad(cyc, sa, sb, r)
                    wave = phasor.real * np.sin(theta) + phasor.imag * np.cos(theta)
                    x[sa:sb, r] += (SQRT2 * float(tables.col_scale[r])) * wave * decay
                added = True
        return added

    def _noise_offset(self, period: int) -> int:
        off = self._noise_offsets.get(period)
        if off is None:
            u = uniform_hash(np.array([period], dtype=np.int64), self._seed * 7 + 3)[0]
            off = int(u * NOISE_SAMPLES)
            if len(self._noise_offsets) > 64:
                self._noise_offsets.clear()
            self._noise_offsets[period] = off
        return off

    def _noise_runs(self, n0: int, n1: int) -> Iterator[tuple[int, int, int]]:
        """(offset in the chunk, length, table position) of contiguous noise-table reads."""
        size = NOISE_SAMPLES
        n = n0
        while n < n1:
            period = n // size
            pos = (n + self._noise_offset(period)) % size
            stop = min(n1, (period + 1) * size, n + (size - pos))
            yield n - n0, stop - n, pos
            n = stop

    def _add_noise(self, n0: int, n1: int, x: Counts) -> None:
        for off, length, pos in self._noise_runs(n0, n1):
            x[off : off + length] += self._noise[pos : pos + length]

    def _stuck_code(self, index: int, row: int) -> float:
        """A stuck sensor repeats the last reading (code) before the fault."""
        key = (index, row)
        value = self._stuck_values.get(key)
        if value is None:
            start = self._scheduled[index].start_n
            value = 0.0 if start == 0 else float(self._render_codes(start - 1, start)[0, row])
            self._stuck_values[key] = value
        return value

    # --- truth ----------------------------------------------------------------------

    def truth_at(self, t_s: float) -> PanelTruth:
        """What the model says the panel does at ``t_s`` seconds after the start."""
        if not (math.isfinite(t_s) and t_s >= 0):
            raise ValueError(f"t_s: must be >= 0, got {t_s}")
        n = math.floor(t_s * self._fs)
        key = self._state_key(n)
        tables = self._tables_for(key)
        rows = tables.rows.copy()
        n_ph = len(self._panel.phases)
        for ci, edge, _window in self._inrush_windows(n, n + 1):
            c = self._panel.circuits[ci]
            extra, dv = self._inrush_for(tables, ci)
            decay = math.exp(-(t_s - edge / self._fs) / c.model.inrush_tau_s)
            for r, e in zip(c.rows, extra, strict=True):
                rows[r, 1] += e * decay
            rows[:n_ph, 1] += dv * decay
        return panel_truth(
            self._panel,
            rows,
            t_s=t_s,
            frequency_hz=self._track.frequency_at(t_s),
            on=key[0],
            active_events=tuple(self._scheduled[i].label for i in key[1]),
        )


__all__ = [
    "DEFAULT_BLOCK_DURATION_S",
    "DEFAULT_START_NS",
    "ScheduledDisturbance",
    "SimulatedSource",
]
