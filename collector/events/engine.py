"""Event engine: waveform blocks in, events out.

One :class:`EventEngine` per source. Each block goes through:

1. one streaming Urms(1/2) computation (IEC 61000-4-30 §5.4.1) over the voltage
   channels, the circuits' current channels, measured residual currents and the
   derived rows (the sample-wise sum of a circuit's line + neutral currents, and
   the line-to-line voltage of a split-phase pair);
2. the detectors: dips / swells / interruptions (:mod:`.voltage`), open neutral,
   overcurrent, ground fault, frequency deviation (own zero-crossing frequency),
   sensor faults and the advisory arc signature.

``process`` returns an :class:`EventBatch` of events that ended in the block, events
that started and are still running, and the time ranges disturbed by a dip, swell or
interruption (for IEC 61000-4-30 flagging of metrics). ``flush`` ends what is still
open at the end of the stream. A non-contiguous block (gap, rate change) ends open
events the same way and restarts all streaming state.

Speed. Most blocks change nothing: no value near a threshold, nothing in progress.
Each detector first screens the whole block with a few vectorised tests that are
*necessary* conditions of any change (a value beyond a threshold, a half cycle
loud and aperiodic enough to be arc-like, a flat, clipped or offset window) and
steps value by value, half cycle by half cycle, only the channels and detectors
that pass or have something in progress. Skipped threshold trackers keep no
history of their own: the last few values of their group are kept
(:class:`.polyphase.RecentValues`) and handed over before they are fed again, so
the result is what stepping every value would give
(``tests/events/test_equivalence.py`` checks it against the engine before this).

The passes over the samples (Urms(1/2), the arc and sensor screens, zero crossings,
the arc shape comparison) are compiled loops (numba): one loop does what took tens
of numpy calls, whose fixed cost dominated at the 0.1-s blocks of a live source. They
are compiled, or loaded from numba's cache, when the engine is built. The arc
signature and the sensor checks share one cut of the block into half-cycle frames.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from collector.events.arc import ArcDetector, ArcSettings
from collector.events.arc import compile_loops as compile_arc_loops
from collector.events.frames import FrameCutter, Frames
from collector.events.frequency import (
    FrequencyDetector,
    FrequencyRule,
    default_band_hz,
    default_fast_band_hz,
)
from collector.events.frequency import compile_loops as compile_frequency_loops
from collector.events.ground_fault import (
    GroundFaultDetector,
    GroundFaultGroup,
    GroundFaultSettings,
)
from collector.events.half_cycle_rms import HalfCycleRmsState, _sum, half_cycle_rms
from collector.events.half_cycle_rms import compile_loops as compile_rms_loops
from collector.events.open_neutral import OpenNeutralDetector
from collector.events.overcurrent import OvercurrentDetector, OvercurrentGroup, OvercurrentRule
from collector.events.sensor import SensorFaultDetector, SensorSettings
from collector.events.sensor import compile_loops as compile_sensor_loops
from collector.events.voltage import VoltageEventDetector, VoltageThresholds
from collector.model import (
    NS_PER_S,
    Block,
    ChannelInfo,
    Event,
    EventType,
    Phase,
    Quantity,
    Severity,
    SourceCapabilities,
    as_float_rows,
)

# Below this many samples per cycle a one-cycle RMS is not trustworthy to 0.2 %.
MIN_SAMPLES_PER_CYCLE = 8.0
# A frequency argument further than this from nominal is ignored (a bad estimate).
_FREQUENCY_PLAUSIBLE_PCT = 15.0
# How long sensor-fault spans are remembered to qualify other events.
_SENSOR_MEMORY_NS = 600 * NS_PER_S
_VOLTAGE_TYPES = (
    EventType.VOLTAGE_DIP, EventType.VOLTAGE_SWELL, EventType.VOLTAGE_INTERRUPTION,
    EventType.OPEN_NEUTRAL,
)


@dataclass(frozen=True)
class EventSettings:
    """Event thresholds; reloadable live. Defaults from IEC 61000-4-30 / EN 50160 practice.

    Voltage thresholds are % of the reference voltage (declared nominal, or the
    sliding reference); overcurrent thresholds % of the circuit's breaker rating.
    ``frequency_band_hz`` None means nominal ± 1 % (EN 50160, 10-s values);
    ``frequency_fast_band_hz`` None means nominal - 6 % / + 4 % (EN 50160, at all
    times) on 1-s values. See docs/events.md for each rule and its source.
    """

    dip_threshold_pct: float = 90.0
    swell_threshold_pct: float = 110.0
    interruption_threshold_pct: float = 5.0
    hysteresis_pct: float = 2.0
    overcurrent_pct_of_rating: float = 100.0
    overcurrent_min_duration_s: float = 1.0
    overcurrent_instant_pct: float = 400.0
    ground_fault_threshold_a: float = 0.030
    ground_fault_min_duration_s: float = 0.04
    ground_fault_sum_tolerance_pct: float = 1.0
    open_neutral_divergence_pct: float = 10.0
    open_neutral_min_duration_s: float = 0.5
    frequency_band_hz: tuple[float, float] | None = None
    frequency_fast_check: bool = True
    frequency_fast_band_hz: tuple[float, float] | None = None
    arc_detection: bool = True
    arc_min_current_a: float = 0.5
    arc_dwell_min_fraction: float = 0.12
    arc_variation_min: float = 0.07
    arc_min_half_cycles: int = 8
    arc_window_s: float = 0.5
    sensor_flat_min_cycles: float = 10.0
    sensor_flat_counts: float = 2.0
    sensor_clipping_min_samples: int = 2
    sensor_nan_min_cycles: float = 1.0
    sensor_dc_offset_pct_of_full_scale: float = 10.0
    sensor_dc_offset_min_s: float = 1.0

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}")

        if not self.interruption_threshold_pct > 0:
            fail("interruption_threshold_pct", "must be > 0")
        if not self.interruption_threshold_pct < self.dip_threshold_pct < 100:
            fail("dip_threshold_pct", "must be in (interruption_threshold_pct, 100)")
        if not self.swell_threshold_pct > 100:
            fail("swell_threshold_pct", "must be > 100")
        if not 0 <= self.hysteresis_pct < min(
            self.dip_threshold_pct - self.interruption_threshold_pct,
            self.swell_threshold_pct - 100.0,
        ):
            fail("hysteresis_pct", "must be >= 0 and smaller than the threshold gaps")
        if not self.overcurrent_pct_of_rating > self.hysteresis_pct:
            fail("overcurrent_pct_of_rating", "must exceed hysteresis_pct")
        if not self.overcurrent_instant_pct > self.overcurrent_pct_of_rating:
            fail("overcurrent_instant_pct", "must exceed overcurrent_pct_of_rating")
        for name in ("overcurrent_min_duration_s", "open_neutral_min_duration_s"):
            if not getattr(self, name) >= 0:
                fail(name, "must be >= 0")
        if not self.open_neutral_divergence_pct > self.hysteresis_pct:
            fail("open_neutral_divergence_pct", "must exceed hysteresis_pct")
        for name in ("frequency_band_hz", "frequency_fast_band_hz"):
            band = getattr(self, name)
            if band is not None and not (len(band) == 2 and 0 < band[0] < band[1]):
                fail(name, "expected (low, high) with 0 < low < high")
        # The sub-settings check the rest and name their fields the same way.
        self.voltage_thresholds()
        self.ground_fault()
        self.arc()
        self.sensor()

    def voltage_thresholds(self) -> VoltageThresholds:
        return VoltageThresholds(
            self.dip_threshold_pct, self.swell_threshold_pct,
            self.interruption_threshold_pct, self.hysteresis_pct,
        )

    def ground_fault(self) -> GroundFaultSettings:
        return GroundFaultSettings(
            self.ground_fault_threshold_a, self.ground_fault_min_duration_s,
            self.hysteresis_pct, self.ground_fault_sum_tolerance_pct,
        )

    def arc(self) -> ArcSettings:
        return ArcSettings(
            min_current_a=self.arc_min_current_a,
            dwell_min_fraction=self.arc_dwell_min_fraction,
            variation_min=self.arc_variation_min,
            min_half_cycles=self.arc_min_half_cycles,
            window_s=self.arc_window_s,
        )

    def sensor(self) -> SensorSettings:
        return SensorSettings(
            flat_min_cycles=self.sensor_flat_min_cycles,
            flat_counts=self.sensor_flat_counts,
            clipping_min_samples=self.sensor_clipping_min_samples,
            nan_min_cycles=self.sensor_nan_min_cycles,
            dc_offset_pct=self.sensor_dc_offset_pct_of_full_scale,
            dc_offset_min_s=self.sensor_dc_offset_min_s,
        )


@dataclass(frozen=True, slots=True)
class EventBatch:
    """What one block (or the final flush) produced.

    Attributes
    ----------
    events : tuple[Event, ...]
        Events that ended, with their duration.
    started : tuple[Event, ...]
        Events that began and are still in progress (``duration_s`` None); each is
        announced once. An event that begins and ends within one block appears only
        in ``events``. ``details["event_id"]`` links a started event to its end.
    disturbed : tuple[tuple[int, int], ...]
        ``[start_ns, end_ns)`` ranges during which a dip, swell or interruption was
        in progress, reported as they become known: a range may begin up to about a
        cycle before this block (detection lags the window); successive batches
        never report the same time twice.
    """

    events: tuple[Event, ...] = ()
    started: tuple[Event, ...] = ()
    disturbed: tuple[tuple[int, int], ...] = field(default=())


def _label(ch: ChannelInfo) -> str:
    return str(ch.phase) if ch.phase is not None else ch.id


@dataclass(frozen=True, slots=True)
class _ResidualSource:
    name: str
    rows: tuple[int, ...]  # rows in the sample matrix summed to form the residual
    line_rows: tuple[int, ...]  # rows of the line currents (summed method), for tolerance
    detector: GroundFaultDetector


class EventEngine:
    """Detects events in the blocks of one source; see the module docstring."""

    def __init__(
        self,
        capabilities: SourceCapabilities,
        settings: EventSettings | None = None,
        *,
        nominal_voltage_v: float | None = None,
        nominal_frequency_hz: float | None = None,
        circuit_ratings_a: Mapping[str, float] | None = None,
        circuit_channels: Mapping[str, tuple[str, ...]] | None = None,
        reference: Literal["nominal", "sliding"] | None = None,
    ) -> None:
        self.capabilities = capabilities
        self.settings = settings if settings is not None else EventSettings()
        s = self.settings
        f_nom = float(nominal_frequency_hz or capabilities.nominal_frequency_hz)
        if not f_nom > 0:
            raise ValueError(f"nominal_frequency_hz: must be > 0, got {f_nom}")
        self.nominal_frequency_hz = f_nom
        if nominal_voltage_v is None:
            nominal_voltage_v = capabilities.nominal_voltage_v
        if nominal_voltage_v is not None and not nominal_voltage_v > 0:
            raise ValueError(f"nominal_voltage_v: must be > 0 or None, got {nominal_voltage_v}")
        if reference is None:
            reference = "nominal" if nominal_voltage_v is not None else "sliding"
        if reference not in ("nominal", "sliding"):
            raise ValueError(f"reference: expected 'nominal' or 'sliding', got {reference!r}")
        if reference == "nominal" and nominal_voltage_v is None:
            raise ValueError("reference: 'nominal' needs nominal_voltage_v, got None")
        self.reference = reference
        self.nominal_voltage_v = nominal_voltage_v
        self.unavailable: dict[str, str] = {}
        ids = itertools.count(1)
        self._new_id = lambda: next(ids)
        channels = capabilities.channels
        self._n_channels = len(channels)
        rows: list[NDArray[np.float64]] = []  # derived rows: weights over the channels

        def unit_row(index: int) -> int:
            w = np.zeros(self._n_channels)
            w[index] = 1.0
            rows.append(w)
            return len(rows) - 1

        # voltage: phase-to-neutral channels only (3U0 / N-G voltages are not phases)
        v_idx = [
            k for k, ch in enumerate(channels)
            if ch.quantity is Quantity.VOLTAGE and ch.phase not in (Phase.N, Phase.G)
        ]
        v_labels = [_label(channels[k]) for k in v_idx]
        if len(set(v_labels)) != len(v_labels):
            v_labels = [channels[k].id for k in v_idx]
        self._v_rows = _rows_of([unit_row(k) for k in v_idx])
        self._v_idx = v_idx
        v_reference = nominal_voltage_v if reference == "nominal" else None
        self._voltage: VoltageEventDetector | None = None
        self._open_neutral: OpenNeutralDetector | None = None
        self._ll_row: int | None = None
        self._frequency: FrequencyDetector | None = None
        if v_idx:
            self._voltage = VoltageEventDetector(
                v_labels, [channels[k].id for k in v_idx], s.voltage_thresholds(), v_reference,
                self._new_id,
            )
            if len(v_idx) >= 2:
                self._open_neutral = OpenNeutralDetector(
                    v_labels, [channels[k].id for k in v_idx], s.open_neutral_divergence_pct,
                    s.hysteresis_pct, s.open_neutral_min_duration_s, f_nom, self._new_id,
                )
                if len(v_idx) == 2:
                    w = np.zeros(self._n_channels)
                    w[v_idx[0]], w[v_idx[1]] = 1.0, -1.0
                    rows.append(w)
                    self._ll_row = len(rows) - 1
            else:
                self.unavailable["open_neutral"] = "needs at least two phase-voltage channels"
            ref_k = next((k for k in v_idx if channels[k].phase is Phase.A), v_idx[0])
            f_rules = [FrequencyRule(
                "10s", 10.0, s.frequency_band_hz or default_band_hz(f_nom), Severity.WARNING
            )]
            if s.frequency_fast_check:
                f_rules.append(FrequencyRule(
                    "1s", 1.0, s.frequency_fast_band_hz or default_fast_band_hz(f_nom),
                    Severity.CRITICAL,
                ))
            self._freq_k = ref_k
            self._frequency = FrequencyDetector(
                channels[ref_k].id, _label(channels[ref_k]), f_nom, f_rules, self._new_id
            )
            if channels[ref_k].rate_hz > 0:
                self._frequency.prepare(channels[ref_k].rate_hz)
        else:
            for name in ("voltage", "open_neutral", "frequency"):
                self.unavailable[name] = "no phase-voltage channel"

        # circuits and their current channels
        if circuit_channels is None:
            grouped: dict[str, list[str]] = {}
            for ch in channels:
                if ch.quantity is Quantity.CURRENT:
                    grouped.setdefault(ch.circuit or ch.id, []).append(ch.id)
            circuit_channels = {c: tuple(ids_) for c, ids_ in grouped.items()}
        ratings = dict(circuit_ratings_a or {})
        unknown = set(ratings) - set(circuit_channels)
        if unknown:
            raise ValueError(
                f"circuit_ratings_a: unknown circuit(s) {sorted(unknown)}; "
                f"have {sorted(circuit_channels)}"
            )
        self._overcurrent: list[tuple[OvercurrentDetector, list[int]]] = []
        self._residuals: list[_ResidualSource] = []
        gf = s.ground_fault()
        simultaneous = capabilities.simultaneous and len({c.skew_s for c in channels}) <= 1
        for circuit, ch_ids in circuit_channels.items():
            idx = [capabilities.index(cid) for cid in ch_ids]
            for k in idx:
                if channels[k].quantity is not Quantity.CURRENT:
                    raise ValueError(
                        f"circuit_channels[{circuit!r}]: {channels[k].id!r} is "
                        f"{channels[k].quantity}, expected a current channel"
                    )
            line = [k for k in idx if channels[k].phase not in (Phase.N, Phase.G)]
            neutral = [k for k in idx if channels[k].phase is Phase.N]
            if circuit in ratings:
                rules = [
                    OvercurrentRule("sustained", s.overcurrent_pct_of_rating,
                                    s.overcurrent_min_duration_s, Severity.WARNING),
                    OvercurrentRule("instantaneous", s.overcurrent_instant_pct, 0.0,
                                    Severity.CRITICAL),
                ]
                det = OvercurrentDetector(
                    circuit, [_label(channels[k]) for k in line or idx], ratings[circuit],
                    rules, s.hysteresis_pct, f_nom, self._new_id,
                )
                self._overcurrent.append((det, [unit_row(k) for k in line or idx]))
            else:
                self.unavailable[f"overcurrent:{circuit}"] = "no breaker rating configured"
            if line and neutral:
                if not simultaneous:
                    self.unavailable[f"ground_fault:{circuit}"] = (
                        "summed residual current needs simultaneously sampled channels"
                    )
                    continue
                w = np.zeros(self._n_channels)
                w[line + neutral] = 1.0
                rows.append(w)
                self._residuals.append(_ResidualSource(
                    circuit, (len(rows) - 1,), tuple(unit_row(k) for k in line),
                    GroundFaultDetector(
                        circuit, [_label(channels[k]) for k in line], "summed", gf, f_nom,
                        self._new_id,
                    ),
                ))
        for k, ch in enumerate(channels):
            if ch.quantity is Quantity.RESIDUAL_CURRENT:
                name = ch.circuit or ch.id
                self._residuals.append(_ResidualSource(
                    name, (unit_row(k),), (),
                    GroundFaultDetector(
                        name, (_label(ch),), "measured", gf, f_nom, self._new_id
                    ),
                ))
        self._weights = np.array(rows).reshape(len(rows), self._n_channels)
        # Most rows are one channel each: those are taken as they are (no arithmetic,
        # so no rounding), and only the derived rows are formed by weighted sums.
        unit = (self._weights != 0).sum(axis=1) == 1
        unit &= self._weights.max(axis=1, initial=0.0) == 1.0
        self._unit_rows = np.flatnonzero(unit)
        self._unit_src = self._weights[unit].argmax(axis=1)
        # each derived row as its terms (channel, weight): summing only the channels
        # a row touches keeps NaN where one of them is NaN and nowhere else, and
        # needs no BLAS (a matrix product over 1-s blocks is large enough for
        # OpenBLAS to wake its threads, which then spin on the other cores)
        self._derived = [
            (int(r), [(int(k), float(self._weights[r, k]))
                      for k in np.flatnonzero(self._weights[r])])
            for r in np.flatnonzero(~unit)
        ]
        self._identity = bool(
            unit.all() and np.array_equal(self._unit_src, np.arange(len(rows)))
            and len(rows) == self._n_channels
        )
        self._oc_group = OvercurrentGroup(self._overcurrent)
        self._gf_group = GroundFaultGroup([
            (res.detector, res.rows[0], res.line_rows) for res in self._residuals
        ])

        self._arc: ArcDetector | None = None
        arc_idx = [
            k for k, ch in enumerate(channels)
            if ch.quantity is Quantity.CURRENT and ch.phase not in (Phase.N, Phase.G)
        ]
        if not s.arc_detection:
            self.unavailable["arc"] = "disabled in settings"
        elif not arc_idx:
            self.unavailable["arc"] = "no line-current channel"
        else:
            self._arc = ArcDetector(
                [channels[k].id for k in arc_idx], [_label(channels[k]) for k in arc_idx],
                s.arc(), self._new_id,
            )
        self._arc_min_samples_per_cycle = 2 * s.arc().min_samples_per_half_cycle
        self._arc_rows = _rows_of(arc_idx)
        self._sensor = SensorFaultDetector(
            channels, [_label(ch) for ch in channels], s.sensor(), f_nom, self._new_id
        )
        if not capabilities.waveform:
            self.unavailable["all"] = "source delivers meter readings, not waveforms"

        self._sensor_spans: dict[int, tuple[str, int, int | None]] = {}
        self._voltage_labels = tuple(zip([channels[k].id for k in v_idx], v_labels, strict=True))
        # channels behind the `channel` of current-based events, to match sensor faults
        self._event_channels: dict[EventType, dict[str, tuple[str, ...]]] = {
            EventType.OVERCURRENT: {c: tuple(ids_) for c, ids_ in circuit_channels.items()},
            EventType.GROUND_FAULT: {
                **{c: tuple(ids_) for c, ids_ in circuit_channels.items()},
                **{(ch.circuit or ch.id): (ch.id,) for ch in channels
                   if ch.quantity is Quantity.RESIDUAL_CURRENT},
            },
            EventType.ARC_FAULT_SUSPECTED: {ch.id: (ch.id,) for ch in channels},
        }
        self._rms_state: HalfCycleRmsState | None = None
        self._cutter: FrameCutter | None = None  # half-cycle frames: arc and sensor
        self._fs_hz_frames = 0.0
        self._fs_hz: float | None = None
        self._seen = False
        if capabilities.waveform:
            # numba compiles its loops (or loads them from its cache) at their first
            # call: here, at start-up, rather than at the first block
            compile_rms_loops()
            compile_arc_loops()
            compile_sensor_loops()
            compile_frequency_loops()
            read_only = np.zeros((2, 3))
            read_only.setflags(write=False)  # as replayed recordings are
            # C-ordered, and column slices of a larger array (rows contiguous)
            for x in (np.zeros((2, 3)), read_only, np.zeros((2, 3))[:, 1:], read_only[:, 1:]):
                _sum(x)

    # ------------------------------------------------------------------ streaming
    def _frequency_for(self, f_hz: float | None) -> float:
        f_nom = self.nominal_frequency_hz
        for candidate in (f_hz, self._frequency.estimate_hz() if self._frequency else None):
            if candidate is not None and np.isfinite(candidate) and (
                abs(candidate / f_nom - 1.0) * 100.0 <= _FREQUENCY_PLAUSIBLE_PCT
            ):
                return float(candidate)
        return f_nom

    def _close_all(self, reason: str) -> EventBatch:
        events: list[Event] = []
        disturbed: tuple[tuple[int, int], ...] = ()
        if self._voltage is not None:
            out = self._voltage.close()
            events += out.ended
            disturbed = out.disturbed
            self._voltage.reset_stream()
        for det in (self._open_neutral, self._frequency, self._arc, self._sensor):
            if det is not None:
                events += det.close()
        events += self._oc_group.close()
        events += self._gf_group.close()
        self._rms_state = None
        self._cutter = None
        self._track_sensor_faults(events, [], 0)
        events = [self._flag_if_sensor_fault(e) for e in events]
        marked = tuple(
            _with_detail(e, "end_reason", reason) if e.details.get("open_ended") else e
            for e in events
        )
        return EventBatch(tuple(sorted(marked, key=lambda e: e.start_ns)), (), disturbed)

    def flush(self) -> EventBatch:
        """End of stream: end events in progress (``details["open_ended"] = True``)."""
        batch = self._close_all("end_of_stream")
        self._seen = False
        return batch

    def process(
        self, block: Block, f_hz: float | None = None, *, has_nan: bool | None = None
    ) -> EventBatch:
        """Detect events in one block; ``f_hz`` is a measured frequency, if the caller has
        one; ``has_nan`` whether the block misses a sample, if the caller knows."""
        # no copy when it is float64 with contiguous rows (the pipeline's joined
        # block is a column slice, with room for the frames' history before it)
        x = as_float_rows(block.samples)
        if x.ndim != 2 or x.shape[0] != self._n_channels:
            raise ValueError(
                f"block.samples: expected shape ({self._n_channels}, n), got {x.shape}"
            )
        if "all" in self.unavailable or x.shape[1] == 0:
            return EventBatch()
        pre: EventBatch | None = None
        if self._seen and (not block.contiguous or block.fs_hz != self._fs_hz):
            pre = self._close_all("gap")
        self._seen = True
        self._fs_hz = block.fs_hz
        fs = block.fs_hz
        f = self._frequency_for(f_hz)
        ended: list[Event] = list(pre.events) if pre else []
        started: list[Event] = []
        disturbed: list[tuple[int, int]] = list(pre.disturbed) if pre else []

        # one look for missing samples serves every detector: a sum is NaN (or
        # infinite: then look again) when one is, and is cheaper than np.isnan
        if has_nan is None:
            has_nan = not math.isfinite(_sum(x)) and bool(np.isnan(x).any())
        if fs / f >= MIN_SAMPLES_PER_CYCLE and self._weights.shape[0]:
            self.unavailable.pop("rms_events", None)
            self._rms_events(block, x, f, has_nan, ended, started, disturbed)
        elif fs / f < MIN_SAMPLES_PER_CYCLE:
            self.unavailable["rms_events"] = (
                f"{fs / f:.1f} samples per cycle < {MIN_SAMPLES_PER_CYCLE:g}"
            )
        if self._frequency is not None:
            ref_v = self._arm_reference_v(x)
            e, st = self._frequency.process(  # (a NaN elsewhere: the row is looked at)
                x[self._freq_k], block.t0_ns, fs, 0.1 * ref_v, has_nan=None if has_nan else False
            )
            ended += e
            started += st
        if fs / f >= MIN_SAMPLES_PER_CYCLE:
            frames = self._frames(x, block.t0_ns, fs, f)
            if fs / f >= self._arc_min_samples_per_cycle and self._arc:
                self.unavailable.pop("arc", None)
                e, st = self._arc.process_frames(frames, self._arc_rows, fs / f)
                ended += e
                started += st
            elif self._arc is not None:
                self.unavailable["arc"] = f"{fs:g} Hz sampling is too slow for the arc signature"
            e, st = self._sensor.process_frames(x, frames, fs / f, has_nan=has_nan)
            ended += e
            started += st
        elif self._arc is not None:
            self.unavailable["arc"] = f"{fs:g} Hz sampling is too slow for the arc signature"
        self._track_sensor_faults(ended, started, block.t0_ns)
        ended = [self._flag_if_sensor_fault(e) for e in ended]
        ended.sort(key=lambda ev: ev.start_ns)
        started.sort(key=lambda ev: ev.start_ns)
        return EventBatch(tuple(ended), tuple(started), tuple(disturbed))

    @property
    def frame_room(self) -> int:
        """Free columns a caller may leave before a block's samples in its own array
        (C-ordered float64, nothing after them) to spare the half-cycle frames a copy
        of the block (see :meth:`FrameCutter.push`); 0 before the first block."""
        return 0 if self._cutter is None else self._cutter.room_wanted

    def _frames(self, x: NDArray[np.float64], t0_ns: int, fs: float, f: float) -> Frames:
        """The block's half-cycle frames of all channels, for the arc signature and the
        sensor checks alike (one copy of the samples and their history, not two)."""
        period = fs / f
        if self._cutter is None or fs != self._fs_hz_frames:
            history = self._sensor.history_samples(period)
            if self._arc is not None:
                history = max(history, self._arc.history_samples(period))
            self._cutter = FrameCutter(self._n_channels, history)
            self._fs_hz_frames = fs
        return self._cutter.push(x, t0_ns, fs, 0.5 * period)

    def _track_sensor_faults(
        self, ended: list[Event], started: list[Event], now_ns: int
    ) -> None:
        """Remember recent sensor-fault spans per channel (open ones end at None)."""
        for ev in started + ended:
            if ev.type is not EventType.SENSOR_FAULT or ev.channel is None:
                continue
            end = None if ev.duration_s is None else ev.start_ns + round(ev.duration_s * NS_PER_S)
            self._sensor_spans[int(ev.details["event_id"])] = (ev.channel, ev.start_ns, end)
        horizon = now_ns - _SENSOR_MEMORY_NS
        self._sensor_spans = {
            k: v for k, v in self._sensor_spans.items() if v[2] is None or v[2] >= horizon
        }

    def _flag_if_sensor_fault(self, ev: Event) -> Event:
        """Mark an event whose channels had a sensor fault meanwhile (its values are suspect).

        A stuck voltage sensor reads as a swell or a dip, a clipping or mis-scaled
        current sensor as an overcurrent: such events keep their values but get
        ``details["sensor_fault_overlap"]`` naming the channel and severity ``info``.
        """
        if ev.type is EventType.SENSOR_FAULT or ev.duration_s is None:
            return ev
        channels = self._event_channels.get(ev.type, {}).get(ev.channel or "", ())
        if ev.type in _VOLTAGE_TYPES:
            channels = tuple(
                cid for cid, label in self._voltage_labels if label in ev.phases
            )
        end = ev.start_ns + round(ev.duration_s * NS_PER_S)
        for channel, lo, hi in self._sensor_spans.values():
            if channel in channels and lo < end and (hi is None or hi > ev.start_ns):
                details = dict(ev.details)
                details["sensor_fault_overlap"] = channel
                return dataclasses.replace(ev, severity=Severity.INFO, details=details)
        return ev

    def _arm_reference_v(self, x: NDArray[np.float64]) -> float:
        """RMS level the frequency detector's noise rejection is scaled to [V]."""
        if self.nominal_voltage_v is not None:
            return float(self.nominal_voltage_v * np.sqrt(2.0))
        if self._voltage is not None and self._voltage.reference_v is not None:
            return float(np.mean(self._voltage.reference_v) * np.sqrt(2.0))
        peak = np.nanmax(np.abs(x[self._freq_k])) if np.isfinite(x[self._freq_k]).any() else 0.0
        return float(peak)

    def _rms_events(
        self,
        block: Block,
        x: NDArray[np.float64],
        f: float,
        has_nan: bool,
        ended: list[Event],
        started: list[Event],
        disturbed: list[tuple[int, int]],
    ) -> None:
        rows = self._rows(x)
        rms, end_ns, self._rms_state = half_cycle_rms(
            rows, block.t0_ns, block.fs_hz, f, self._rms_state, has_nan=has_nan
        )
        if rms.shape[1] == 0:
            return
        window_ns = round(NS_PER_S / f)
        centre_ns = end_ns - window_ns // 2
        if self._voltage is not None:
            out = self._voltage.process(rms[self._v_rows], centre_ns, f)
            ended += out.ended
            started += out.started
            disturbed += out.disturbed
            ref = self._voltage.reference_v
            if self._open_neutral is not None and ref is not None:
                u_pct = self._voltage.last_pct  # the same values, when not filtered
                if u_pct is None or self.reference == "sliding":
                    u_pct = 100.0 * rms[self._v_rows] / ref[:, None]
                ll = None
                if self._ll_row is not None:
                    ll = 100.0 * rms[self._ll_row] / (2.0 * float(np.mean(ref)))
                e, st = self._open_neutral.process(u_pct, ll, centre_ns)
                ended += e
                started += st
        e, st = self._oc_group.process(rms, centre_ns)
        ended += e
        started += st
        e, st = self._gf_group.process(rms, centre_ns)
        ended += e
        started += st

    def _rows(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """The rows the one-cycle RMS is computed on: channels and derived sums."""
        if self._identity:
            return x
        rows = np.empty((self._weights.shape[0], x.shape[1]))
        rows[self._unit_rows] = x[self._unit_src]
        for r, terms in self._derived:
            out = rows[r]
            (k, w), *rest = terms
            np.multiply(x[k], w, out=out)
            for k, w in rest:
                out += w * x[k]
        return rows


def _rows_of(rows: list[int]) -> slice | list[int]:
    """``rows`` as a slice when consecutive: indexing by it is a view, not a copy."""
    if rows and rows == list(range(rows[0], rows[-1] + 1)):
        return slice(rows[0], rows[-1] + 1)
    return rows


def _with_detail(event: Event, key: str, value: str) -> Event:
    details = dict(event.details)
    details[key] = value
    return dataclasses.replace(event, details=details)
