"""The collector's data flow: source blocks -> events + metrics -> sinks (+ waveform capture).

One ``Pipeline.process`` call takes one block. The engines run on ``process_s`` of
contiguous signal at a time (blocks are held and joined until then, or until a gap
or a rate change): much of their cost is per call, so a source's 0.1-s blocks run
as one 1-s block for a little over half the CPU (the event engine's share drops to
a third), and results come out up to ``process_s`` later. Event detection runs
first so that the metrics engine can flag intervals that overlap a dip, swell or
interruption (IEC 61000-4-30 flagging).
Sinks are isolated: a sink that raises is logged and counted, and measuring goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from numpy.typing import NDArray

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


_NOTHING = StepResult((), (), ())  # e.g. what a block that is only held produces


@dataclass
class PipelineStats:
    blocks: int = 0
    samples: int = 0
    signal_s: float = 0.0
    metrics: int = 0
    events: int = 0
    sink_errors: dict[str, int] = field(default_factory=dict)


def _join(held: Sequence[Block], room: int = 0) -> tuple[Block, bool | None]:
    """The held blocks as one, and whether it misses a sample (None: not known).

    Float64 samples are copied by a compiled loop that sums them on the way (a NaN
    or an infinity makes the sum so; then the copy is looked at): the event engine
    then needs no pass of its own over the samples to look for missing ones. They
    are copied after ``room`` free columns of the same array, where the event
    engine puts the history of its half-cycle frames instead of copying the block.
    """
    first = held[0]
    samples = [b.samples for b in held]
    if any(x.dtype != np.float64 or x.ndim != 2 for x in samples):
        joined = np.concatenate(samples, axis=1)
        return Block(first.t0_ns, first.fs_hz, joined, contiguous=first.contiguous), None
    out = np.empty((samples[0].shape[0], room + sum(x.shape[1] for x in samples)))
    total = 0.0
    offset = room
    for x in samples:
        total += _copy_and_sum(x, out, offset)
        offset += x.shape[1]
    joined = out[:, room:]
    has_nan = not math.isfinite(total) and bool(np.isnan(joined).any())
    return Block(first.t0_ns, first.fs_hz, joined, contiguous=first.contiguous), has_nan


@numba.njit(cache=True, fastmath={"reassoc", "nsz"})
def _copy_and_sum(src: NDArray[np.float64], out: NDArray[np.float64], offset: int) -> float:
    """Copy ``src`` into ``out[:, offset:]``; the sum of its samples, in any order."""
    total = 0.0
    n = src.shape[1]
    for r in range(src.shape[0]):
        row = src[r]
        dst = out[r, offset:offset + n]
        for t in range(n):
            v = row[t]
            dst[t] = v
            total += v
    return total


def compile_loops() -> None:
    """Compile the join's loop now (or load it from numba's cache), for the layouts
    sources deliver: C-ordered or a view, writeable or read-only (replays)."""
    base = np.zeros((1, 4))
    read_only = base.copy()
    read_only.setflags(write=False)
    for x in (base, base[:, 1:3], read_only, read_only[:, 1:3]):
        _copy_and_sum(x, np.zeros((1, 4)), 0)


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
        compile_loops()
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
        n = block.samples.shape[1]
        duration_s = n / block.fs_hz
        stats = self.stats
        stats.blocks += 1
        stats.samples += n
        stats.signal_s += duration_s
        first: StepResult | None = None
        if self._held and (not block.contiguous or block.fs_hz != self._held[0].fs_hz):
            first = self._run_held()
        self._held.append(block)
        self._held_s += duration_s
        if self._held_s < self._process_s * (1.0 - 1e-9):
            return _NOTHING if first is None else first
        last = self._run_held()
        if first is None:
            return last
        steps = (first, last)
        return StepResult(
            tuple(m for s in steps for m in s.metrics),
            tuple(e for s in steps for e in s.events),
            tuple(e for s in steps for e in s.started),
        )

    def finish(self) -> StepResult:
        """End of stream: process what is held, close open events and partial
        aggregates, flush the sinks."""
        held = self._run_held() if self._held else _NOTHING
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
        block, has_nan = (
            (held[0], None) if len(held) == 1 else _join(held, self._events.frame_room)
        )
        batch = self._events.process(block, f_hz=self._f_hz, has_nan=has_nan)
        metrics = self._metrics.process(block, batch.disturbed, has_nan=has_nan)
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
