"""Real-time factor of the whole measurement chain, and the collector's memory.

Run ``python -m tests.benchmarks.bench_pipeline [seconds] [block_s] [process_s]``
(defaults: 60 s of signal in 0.1-s blocks, the simulated source's default, processed
as the collector does, ``RunSettings.process_s`` = 1 s at a time; give ``process_s``
0 to run the engines on every block). The signal is the issue's benchmark shape: 12
single-phase circuits + 3 voltages at 6.4 kS/s per channel, every metric on (basic
intervals with harmonics to the 50th, 150-cycle / 10-min / 2-h aggregation, every
event detector), no sink. Blocks are generated up front so only the pipeline is
timed (CPU time of this one process, i.e. one core); the best of three passes,
each with a new pipeline, is printed, since other guests of a virtual machine slow
single passes down by 10-20 % now and then. Prints:

- the real-time factor of the pipeline (holding and joining blocks, events +
  metrics), and of each engine alone (a record's fields become Python objects when
  first read, and no sink reads them here);
- what reading every field of every record adds (a sink such as
  ``replay --metrics-out`` does; the InfluxDB and MQTT sinks read the ~3 s aggregates);
- the peak resident set size of this process (psutil), which includes the blocks
  held in memory for the run, and the RSS before the blocks were made (the collector's
  own footprint with numpy/scipy loaded).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from collector.assembly import RunSettings, build_pipeline
from collector.model import Block, Metrics, SourceCapabilities
from collector.sources.simulated import SimulatedSource
from tests.benchmarks.bench_simulated import fifteen_channel_panel


def _timed(method: Callable[..., Any], clock: dict[str, float], name: str) -> Callable[..., Any]:
    """``method``, adding the CPU time of each call to ``clock[name]``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        c0 = time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            clock[name] += time.process_time() - c0

    return call


@dataclass
class _Pass:
    total: float  # CPU seconds in Pipeline.process
    events: float
    metrics: float
    fields: float  # making every field of every record a Python object
    records: int


def _one_pass(caps: SourceCapabilities, settings: RunSettings, blocks: list[Block]) -> _Pass:
    """One pass of a new pipeline over ``blocks``, timed."""
    pipeline = build_pipeline(caps, settings, [])
    clock = {"events": 0.0, "metrics": 0.0}
    events, metrics = pipeline._events, pipeline._metrics  # each engine timed alone
    events.process = _timed(events.process, clock, "events")  # type: ignore[method-assign]
    metrics.process = _timed(metrics.process, clock, "metrics")  # type: ignore[method-assign]
    records: list[Metrics] = []
    c0 = time.process_time()
    for block in blocks:
        records.extend(pipeline.process(block).metrics)
    total = time.process_time() - c0
    # what a sink that reads every field (replay --metrics-out) adds: the records'
    # fields become Python objects only when first read
    c0 = time.process_time()
    for m in records:
        len(m.fields)
    t_fields = time.process_time() - c0
    return _Pass(total, clock["events"], clock["metrics"], t_fields, len(records))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    block_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    process_s = float(sys.argv[3]) if len(sys.argv) > 3 else RunSettings().process_s
    repeats = 3
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    panel = fifteen_channel_panel()
    source = SimulatedSource(panel, seed=7, duration_s=seconds, block_duration_s=block_s)
    blocks = list(source.blocks())
    caps = source.capabilities
    settings = RunSettings(
        nominal_voltage_v=230.0,
        circuit_ratings_a={c.id: c.breaker_rating_a for c in panel.circuits},
        process_s=process_s,
    )
    best: _Pass | None = None
    for _ in range(repeats):
        run = _one_pass(caps, settings, blocks)
        if best is None or run.total < best.total:
            best = run
    assert best is not None
    total, t_events, t_metrics = best.total, best.events, best.metrics
    t_fields, n_records = best.fields, best.records
    rss_peak = proc.memory_info().rss
    print(f"measurement chain, {seconds:.0f} s of signal, {len(caps.channels)} channels "
          f"({len(panel.circuits)} circuits + 3 voltages) at {panel.sample_rate_hz:.0f} S/s, "
          f"{block_s:g}-s blocks processed {process_s:g} s at a time, best of {repeats} passes, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"  pipeline         : {seconds / total:7.0f}x real time "
          f"({total / seconds * 100:.2f} % of one core)")
    print(f"  event engine     : {seconds / t_events:7.0f}x real time")
    print(f"  metrics engine   : {seconds / t_metrics:7.0f}x real time "
          f"({n_records} records)")
    print(f"  fields of every record made Python objects (as replay --metrics-out does): "
          f"+{t_fields / seconds * 1000:.2f} ms per s of signal; chain then "
          f"{seconds / (total + t_fields):.0f}x")
    print(f"  RSS: {rss_start / 2**20:.0f} MiB at start (Python + numpy/scipy + GridGuard), "
          f"{rss_peak / 2**20:.0f} MiB at the end (incl. {seconds:.0f} s of blocks in memory)")


if __name__ == "__main__":
    main()
