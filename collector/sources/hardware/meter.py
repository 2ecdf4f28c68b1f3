"""Meter sources: readings in, Metrics out (no waveform blocks).

A PZEM-004T delivers finished readings (V, I, P, energy, f, PF); a multiplexed
ADS1115 delivers a few samples per cycle at irregular instants, good for RMS and
power over many cycles but not for the waveform DSP (harmonics, half-cycle RMS).
Neither can honestly produce :class:`~collector.model.Block` s for the metrics
engine, so both implement :class:`MeterSource`: each ``read()`` blocks for one
reading interval and returns the Metrics (fields named as in
:mod:`collector.nomenclature`; a value the source cannot measure is None, never a
number) and any sensor-fault events. The collector publishes them to the sinks as
they are (:func:`publish`); aggregation to 10 min / 2 h is left to the InfluxDB
rollups.

``capabilities.waveform`` is False for every meter source.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from collector.model import Event, Metrics, Sink, SourceCapabilities

log = logging.getLogger(__name__)

# Interval name of a meter reading that is not one of the IEC 61000-4-30 windows
# (a PZEM reading covers the module's own ~1 s measurement).
READING_INTERVAL = "reading"


@dataclass(frozen=True, slots=True)
class MeterBatch:
    """What one ``read()`` produced.

    Attributes
    ----------
    metrics : tuple[Metrics, ...]
    events : tuple[Event, ...]
        Events that ended (or were one-off) in this interval.
    started : tuple[Event, ...]
        Events that began and are still running.
    errors : tuple[str, ...]
        Readable problems of this interval (a meter that did not answer...): the
        source went on with the others.
    """

    metrics: tuple[Metrics, ...] = ()
    events: tuple[Event, ...] = ()
    started: tuple[Event, ...] = ()
    errors: tuple[str, ...] = ()


class MeterSource(Protocol):
    """A source of readings: declares capabilities, then yields a batch per interval."""

    @property
    def capabilities(self) -> SourceCapabilities: ...

    def read(self) -> MeterBatch: ...

    def close(self) -> MeterBatch: ...


def batches(source: MeterSource, count: int | None = None) -> Iterator[MeterBatch]:
    """``count`` batches (None: until the caller stops), then the closing batch."""
    n = 0
    try:
        while count is None or n < count:
            yield source.read()
            n += 1
    finally:
        yield source.close()


@dataclass
class PublishStats:
    batches: int = 0
    metrics: int = 0
    events: int = 0
    sink_errors: dict[str, int] = field(default_factory=dict)


def publish(batch: MeterBatch, sinks: Sequence[Sink], stats: PublishStats) -> None:
    """Hand one batch to every sink; a failing sink is logged and counted, never fatal."""
    stats.batches += 1
    stats.metrics += len(batch.metrics)
    stats.events += len(batch.events)
    for problem in batch.errors:
        log.warning("%s", problem)
    if not (batch.metrics or batch.events):
        return
    for sink in sinks:
        try:
            sink.publish(batch.metrics, batch.events)
        except Exception:
            name = type(sink).__name__
            stats.sink_errors[name] = stats.sink_errors.get(name, 0) + 1
            log.exception("sink %s failed; measuring goes on", name)
