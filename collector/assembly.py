"""Assemble a pipeline for a source: engines, circuits, capture and sinks in one place.

`gridguard run`, `replay` and the benchmarks all build their pipeline here, so a
recording and a live panel are measured by exactly the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collector.capture.waveform import WaveformCapture
from collector.config.models import GridGuardConfig
from collector.events.engine import EventEngine, EventSettings
from collector.metrics_engine import CircuitSpec, MetricsEngine
from collector.model import Quantity, Sink, SourceCapabilities
from collector.pipeline import Pipeline, circuits_from_capabilities


@dataclass(frozen=True)
class RunSettings:
    """What a pipeline needs beyond the source's own capabilities."""

    nominal_voltage_v: float | None = None
    nominal_frequency_hz: float | None = None
    events: EventSettings = field(default_factory=EventSettings)
    circuit_ratings_a: Mapping[str, float] = field(default_factory=dict)
    circuits: Sequence[CircuitSpec] | None = None  # None: pair channels by phase
    capture_dir: Path | None = None
    capture_pre_cycles: int = 5
    capture_post_cycles: int = 10
    aggregations: tuple[str, ...] = ("basic", "150c", "10min", "2h")
    # The metrics engine measures basic intervals in batches (vectorised over
    # several of them): each batch ends with the last interval of a 150/180-cycle
    # aggregate, so the ~3 s aggregates come out as early as unbatched, basic
    # intervals up to ~3 s later; never more than this much signal waits.
    metrics_batch_s: float = 5.0
    # Signal the pipeline holds before it runs the engines: much of their cost is
    # per call (0.15 ms per call of the event engine for a 15-channel panel), so
    # 0.1-s source blocks held to 1 s cost the chain 0.55 of running every block,
    # and results reach the sinks up to this much later (docs/measurement.md
    # section 11). Config: source.process_interval_s.
    process_s: float = 1.0


def build_pipeline(
    caps: SourceCapabilities, settings: RunSettings, sinks: Sequence[Sink] = ()
) -> Pipeline:
    """A ready pipeline for a source with capabilities ``caps``."""
    f_nom = settings.nominal_frequency_hz or caps.nominal_frequency_hz
    v_nom = settings.nominal_voltage_v or caps.nominal_voltage_v
    circuits = list(settings.circuits) if settings.circuits is not None else (
        circuits_from_capabilities(caps)
    )
    aggregations = tuple(
        ("180c" if f_nom == 60 else "150c") if a in ("150c", "180c") else a
        for a in settings.aggregations
    )
    metrics = MetricsEngine(
        caps, circuits, nominal_frequency_hz=f_nom, aggregations=aggregations,
        batch_s=settings.metrics_batch_s, batch_to_aggregates=True,
    )
    events = EventEngine(
        caps,
        settings.events,
        nominal_voltage_v=v_nom,
        nominal_frequency_hz=f_nom,
        circuit_ratings_a=settings.circuit_ratings_a,
        circuit_channels={c.id: c.current_channels for c in circuits},
        reference="nominal" if v_nom else "sliding",
    )
    capture = None
    if settings.capture_dir is not None:
        capture = WaveformCapture(
            caps,
            settings.capture_dir,
            pre_cycles=settings.capture_pre_cycles,
            post_cycles=settings.capture_post_cycles,
        )
    return Pipeline(metrics, events, sinks, capture=capture, process_s=settings.process_s)


def event_settings_from_config(cfg: GridGuardConfig) -> EventSettings:
    """The event engine's thresholds from the (live-reloadable) ``thresholds`` section."""
    t = cfg.thresholds
    return EventSettings(
        dip_threshold_pct=t.voltage.dip_threshold_pct,
        swell_threshold_pct=t.voltage.swell_threshold_pct,
        interruption_threshold_pct=t.voltage.interruption_threshold_pct,
        hysteresis_pct=t.voltage.hysteresis_pct,
        overcurrent_pct_of_rating=t.current.overcurrent_pct_of_rating,
        overcurrent_min_duration_s=t.current.overcurrent_min_duration_s,
        overcurrent_instant_pct=t.current.overcurrent_instant_pct,
        ground_fault_threshold_a=t.ground_fault_threshold_a,
        ground_fault_min_duration_s=t.ground_fault_min_duration_s,
        open_neutral_divergence_pct=t.open_neutral_divergence_pct,
        open_neutral_min_duration_s=t.open_neutral_min_duration_s,
        frequency_band_hz=cfg.frequency_band_hz(),
        arc_detection=cfg.events.arc_detection.enabled,
    )


def settings_from_config(cfg: GridGuardConfig) -> RunSettings:
    """Run settings from a validated config: nominal values, thresholds, circuits, capture."""
    circuits = [
        CircuitSpec(
            id=c.id,
            current_channels=tuple(c.current_channels),
            voltage_channels=cfg.voltage_channels_for(c.id),
        )
        for c in cfg.circuits
    ]
    capture = cfg.events.waveform_capture
    return RunSettings(
        nominal_voltage_v=cfg.system.nominal_voltage_v,
        nominal_frequency_hz=float(cfg.system.nominal_frequency_hz),
        events=event_settings_from_config(cfg),
        circuit_ratings_a={c.id: c.breaker_rating_a for c in cfg.circuits},
        circuits=circuits,
        capture_dir=capture.directory if capture.enabled else None,
        capture_pre_cycles=capture.pre_cycles,
        capture_post_cycles=max(capture.post_cycles, 1),
        process_s=cfg.source.process_interval_s,
    )


def describe_channels(caps: SourceCapabilities) -> list[tuple[str, str, str, str]]:
    """(id, quantity, phase, circuit) per channel, for the CLI's channel table."""
    return [
        (c.id, str(c.quantity), str(c.phase or ""),
         c.circuit or ("" if c.quantity is Quantity.VOLTAGE else c.id))
        for c in caps.channels
    ]
