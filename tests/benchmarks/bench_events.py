"""Speed of the event-detection engine (printed, not asserted).

Run ``python tests/benchmarks/bench_events.py [seconds]``. Prints the real-time
factor (signal seconds per CPU second on one core, ``time.process_time``) of
``EventEngine.process`` alone, on blocks generated beforehand by the simulated panel
(default 0.1-s blocks), for:

- the brief's shape: 12 single-phase circuits + 3 voltages (15 channels) at
  6.4 kS/s, 16-bit simultaneous sampling;
- the ``three_phase_panel`` preset (22 channels: three-phase circuits with a CT per
  phase, plus the residual CT);

each in normal operation (no event in progress) and with events in progress all the
time (a dip on all phases, two circuits overloaded, one arcing); then the 15-channel
normal case again with longer blocks, since much of the cost is per block (Python and
numpy's per-call overhead), not per sample, and both panels with events in progress
at 1-s blocks, what the collector's pipeline hands the engine. First it prints the
wall time of building the first engine, when numba compiles the engine's loops or
loads them from its cache
(``__pycache__``): the start-up cost of the compiled loops. The figures depend on the
machine and on what else it is doing; the load average is printed alongside.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from collector.events.engine import EventEngine
from collector.model import Block, Phase
from collector.pipeline import circuits_from_capabilities
from collector.sources.simulated import (
    DEFAULT_BLOCK_DURATION_S,
    Arcing,
    DisturbanceType,
    Overload,
    PanelSpec,
    SimulatedSource,
    VoltageChange,
    preset,
)
from collector.sources.simulated.disturbances import Disturbance

_EVENTS_FROM_S = 0.5  # disturbances begin here and last to the end of the signal


def fifteen_channel_panel() -> PanelSpec:
    """The demo panel with every three-phase circuit split into single-phase ones,
    cut to 12 circuits, without the residual CT: 3 voltages + 12 currents."""
    base = preset("three_phase_panel")
    single = []
    for c in base.circuits:
        if len(c.phases) == 1:
            single.append(c)
            continue
        for p in c.phases:
            load = dataclasses.replace(c.load, power_w=c.load.power_w / 3)
            single.append(
                dataclasses.replace(
                    c, id=f"{c.id}_{p.value.lower()}", phases=(Phase(p),), load=load
                )
            )
    return dataclasses.replace(base, circuits=tuple(single[:12]), residual_channel=False)


def ongoing_events(panel: PanelSpec, seconds: float) -> tuple[Disturbance, ...]:
    """A dip on all phases, two overloaded circuits and one arcing, all to the end."""
    length = seconds - _EVENTS_FROM_S
    # circuits whose loads run all the time (no schedule) in both panels
    solar = next(c.id for c in panel.circuits if c.id.startswith("solar"))
    return (
        VoltageChange(DisturbanceType.VOLTAGE_DIP, _EVENTS_FROM_S, length, 80.0),
        Overload(_EVENTS_FROM_S, length, "office_a", 3.0),
        Overload(_EVENTS_FROM_S, length, "office_b", 3.0),
        Arcing(_EVENTS_FROM_S, length, solar),
    )


def engine_for(src: SimulatedSource) -> EventEngine:
    """The engine as ``collector.assembly.build_pipeline`` sets it up."""
    caps = src.capabilities
    return EventEngine(
        caps,
        nominal_voltage_v=src.panel.mains.nominal_voltage_v,
        nominal_frequency_hz=src.panel.mains.nominal_frequency_hz,
        circuit_ratings_a={c.id: c.breaker_rating_a for c in src.panel.circuits},
        circuit_channels={c.id: c.current_channels for c in circuits_from_capabilities(caps)},
        reference="nominal",
    )


def measure(
    panel: PanelSpec, seconds: float, events: bool, repeats: int = 3,
    block_s: float = DEFAULT_BLOCK_DURATION_S,
) -> tuple[int, float, int, int]:
    """(channels, best CPU seconds, events started, events ended) for ``seconds`` of signal."""
    disturbances = ongoing_events(panel, seconds) if events else ()
    src = SimulatedSource(panel, disturbances=disturbances, seed=1, duration_s=seconds,
                          block_duration_s=block_s)
    blocks: list[Block] = list(src.blocks())
    best = float("inf")
    n_started = n_ended = 0
    for _ in range(repeats):
        engine = engine_for(src)
        cpu = 0.0
        n_started = n_ended = 0
        for block in blocks:
            t0 = time.process_time()
            batch = engine.process(block)
            cpu += time.process_time() - t0
            n_started += len(batch.started)
            n_ended += len(batch.events)
        best = min(best, cpu)
    return len(src.capabilities.channels), best, n_started, n_ended


def startup_s() -> float:
    """Wall time of building the first engine of this process [s]."""
    src = SimulatedSource(fifteen_channel_panel(), seed=1, duration_s=1.0)
    t0 = time.perf_counter()
    engine_for(src)
    return time.perf_counter() - t0


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    print(f"first EventEngine built in {startup_s():.2f} s (compiled loops loaded or compiled)")
    print(
        f"EventEngine.process, {seconds:.0f} s of signal per run, best of 3, "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    cases = (
        ("12 circuits + 3 voltages", fifteen_channel_panel()),
        ("three_phase_panel preset", preset("three_phase_panel")),
    )
    for name, panel in cases:
        for events in (False, True):
            channels, cpu, n_started, n_ended = measure(panel, seconds, events)
            state = "events in progress" if events else "normal operation"
            print(
                f"  {name:26s} {channels:2d} ch @ {panel.sample_rate_hz:.0f} S/s, "
                f"{state:18s}: {seconds / cpu:7.0f}x real time "
                f"({n_started} started, {n_ended} ended)"
            )
    panel = fifteen_channel_panel()
    for block_s in (0.5, 1.0):
        channels, cpu, _, _ = measure(panel, seconds, False, block_s=block_s)
        print(
            f"  {'12 circuits + 3 voltages':26s} {channels:2d} ch, normal operation, "
            f"{block_s:.1f}-s blocks: {seconds / cpu:7.0f}x real time"
        )
    # the collector's pipeline hands the engine 1 s of signal at a time
    for name, panel in cases:
        channels, cpu, _, _ = measure(panel, seconds, True, block_s=1.0)
        print(
            f"  {name:26s} {channels:2d} ch, events in progress, 1.0-s blocks: "
            f"{seconds / cpu:7.0f}x real time"
        )


if __name__ == "__main__":
    main()
