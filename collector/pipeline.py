"""The collector's data flow: source blocks -> events + metrics -> sinks (+ waveform capture).

One ``Pipeline.process`` call takes one block. The engines run on ``process_s`` of
contiguous signal at a time (blocks are held and joined until then, or until a gap
or a rate change): their cost per call is mostly fixed, so a source's 0.1-s blocks
run as one 1-s block at a third of the CPU, and results come out up to
``process_s`` later. Event detection runs first so that the metrics engine can flag
intervals that overlap a dip, swell or interruption (IEC 61000-4-30 flagging).
Sinks are isolated: a sink that raises is logged and counted, and measuring goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from collector.capture.waveform import WaveformCapture
from collector.events.engine import EventEngine
from collector.metrics_engine import CircuitSpec, MetricsEngine
from collector.model import Block, Event, Metrics, Phase, Quantity, Sink, SourceCapabilities

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one block produced."""

    metrics: tuple[Metrics, ...]
    events: tuple[Event, ...]  # ended events
    started: tuple[Event, ...]  # events that began and are still running


_HELD = StepResult((), (), ())  # what a block that is only held produces


@dataclass
class PipelineStats:
    blocks: int = 0
    samples: int = 0
    signal_s: float = 0.0
    metrics: int = 0
    events: int = 0
    sink_errors: dict[str, int] = field(default_factory=dict)


def circuits_from_capabilities(caps: SourceCapabilities) -> list[CircuitSpec]:
    """Pair every current channel with the voltage channel of its phase, grouped by circuit.

    A current channel without a phase is paired with the only voltage channel when
    there is exactly one; without any voltage it becomes a current-only circuit.
    """
    voltages = [c for c in caps.channels if c.quantity is Quantity.VOLTAGE]
    by_phase: dict[Phase, str] = {}
    for c in voltages:
        # several buses on one phase (a substation record): the first one wins; select
        # channels or give circuits in a config to choose another
        if c.phase is not None:
            by_phase.setdefault(c.phase, c.id)
    grouped: dict[str, tuple[list[str], list[str]]] = {}
    for ch in caps.channels:
        if ch.quantity is not Quantity.CURRENT:
            continue
        volt = by_phase.get(ch.phase) if ch.phase is not None else None
        if volt is None and len(voltages) == 1:
            volt = voltages[0].id
        currents, volts = grouped.setdefault(ch.circuit or ch.id, ([], []))
        currents.append(ch.id)
        volts.append(volt or "")
    return [
        CircuitSpec(id=cid, current_channels=tuple(cur), voltage_channels=tuple(v))
        for cid, (cur, v) in grouped.items()
    ]


class Pipeline:
    """Runs the event and metrics engines over blocks and hands results to the sinks."""

    def __init__(
        self,
        metrics_engine: MetricsEngine,
        event_engine: EventEngine,
        sinks: Sequence[Sink] = (),
        *,
        capture: WaveformCapture | None = None,
        process_s: float = 0.0,
    ) -> None:
        if not process_s >= 0:
            raise ValueError(f"process_s: must be >= 0 s, got {process_s}")
        self._process_s = process_s
        self._held: list[Block] = []  # contiguous blocks not yet processed
        self._held_s = 0.0
        self._metrics = metrics_engine
        self._events = event_engine
        self._sinks = list(sinks)
        self._capture = capture
        self._f_hz: float | None = None  # of the latest basic interval
        self.stats = PipelineStats()

    @property
    def frequency_hz(self) -> float | None:
        """Latest measured fundamental frequency [Hz], if any."""
        return self._f_hz

    def process(self, block: Block) -> StepResult:
        """Take one block; what the engines produced from the signal held so far.

        The engines run when ``process_s`` of contiguous signal is held; a block
        after a gap or at another rate first has the held signal processed.
        """
        self.stats.blocks += 1
        self.stats.samples += block.n_samples
        self.stats.signal_s += block.duration_s
        steps: list[StepResult] = []
        if self._held and (not block.contiguous or block.fs_hz != self._held[0].fs_hz):
            steps.append(self._run_held())
        self._held.append(block)
        self._held_s += block.duration_s
        if self._held_s >= self._process_s * (1.0 - 1e-9):
            steps.append(self._run_held())
        if not steps:
            return _HELD
        if len(steps) == 1:
            return steps[0]
        return StepResult(
            tuple(m for s in steps for m in s.metrics),
            tuple(e for s in steps for e in s.events),
            tuple(e for s in steps for e in s.started),
        )

    def finish(self) -> StepResult:
        """End of stream: process what is held, close open events and partial
        aggregates, flush the sinks."""
        held = self._run_held() if self._held else StepResult((), (), ())
        batch = self._events.flush()
        metrics = self._metrics.flush()
        if self._capture is not None:
            self._capture.close()
        result = self._emit(tuple(metrics), batch.events, batch.started)
        for sink in self._sinks:
            try:
                sink.close()
            except Exception:
                log.exception("sink %s failed to close", type(sink).__name__)
        return StepResult(
            held.metrics + result.metrics, held.events + result.events,
            held.started + result.started,
        )

    def _run_held(self) -> StepResult:
        """Run the engines on the held blocks, joined into one."""
        held, self._held, self._held_s = self._held, [], 0.0
        block = held[0] if len(held) == 1 else Block(
            held[0].t0_ns,
            held[0].fs_hz,
            np.concatenate([b.samples for b in held], axis=1),
            contiguous=held[0].contiguous,
        )
        batch = self._events.process(block, f_hz=self._f_hz)
        metrics = self._metrics.process(block, batch.disturbed)
        self._f_hz = self._metrics.frequency_hz
        if self._capture is not None:
            self._capture.feed(block, batch.started, batch.events)
        return self._emit(tuple(metrics), batch.events, batch.started)

    def run(self, blocks: Iterable[Block]) -> PipelineStats:
        """Process every block, then finish."""
        for block in blocks:
            self.process(block)
        self.finish()
        return self.stats

    def _emit(
        self, metrics: tuple[Metrics, ...], events: tuple[Event, ...], started: tuple[Event, ...]
    ) -> StepResult:
        self.stats.metrics += len(metrics)
        self.stats.events += len(events)
        if metrics or events or started:
            for sink in self._sinks:
                try:
                    sink.publish(metrics, started + events)
                except Exception:
                    # The sampler never dies because a sink failed.
                    name = type(sink).__name__
                    self.stats.sink_errors[name] = self.stats.sink_errors.get(name, 0) + 1
                    log.exception("sink %s failed; measuring goes on", name)
        return StepResult(metrics, events, started)
