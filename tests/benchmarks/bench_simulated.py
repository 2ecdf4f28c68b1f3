"""Generation speed of the simulated panel (printed, not asserted).

Run ``python -m tests.benchmarks.bench_simulated [seconds]``. Prints the real-time
factor (signal seconds per CPU second on one core) for:

- the brief's benchmark shape: 12 single-phase circuits + 3 voltages (15 channels)
  at 6.4 kS/s, 16-bit simultaneous sampling, loads switching on their schedules;
- the ``three_phase_panel`` preset itself (22 channels: its three-phase circuits have
  a CT per phase, plus the residual CT);
- the multiplexed 12-bit ``home_single_phase_230v`` preset (per-channel skew);

each with the default 0.1 s blocks. The figures depend on the machine and on what
else it is doing; the load average is printed alongside.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from collector.model import Phase
from collector.sources.simulated import PanelSpec, SimulatedSource, preset


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
            single.append(dataclasses.replace(c, id=f"{c.id}_{p.value.lower()}",
                                              phases=(Phase(p),), load=load))
    return dataclasses.replace(base, circuits=tuple(single[:12]), residual_channel=False)


def measure(panel: PanelSpec, seconds: float, repeats: int = 3) -> tuple[int, float, float]:
    """(channels, best CPU seconds, best wall seconds) to produce ``seconds`` of blocks."""
    best_cpu = best_wall = float("inf")
    channels = 0
    for _ in range(repeats):
        src = SimulatedSource(panel, seed=1, duration_s=seconds)
        channels = len(src.capabilities.channels)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        samples = 0
        for block in src.blocks():
            samples += block.n_samples
        best_cpu = min(best_cpu, time.process_time() - cpu0)
        best_wall = min(best_wall, time.perf_counter() - wall0)
        assert samples == round(seconds * panel.sample_rate_hz)
    return channels, best_cpu, best_wall


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    print(f"simulated panel, {seconds:.0f} s of signal per run, best of 3, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    cases = (
        ("12 circuits + 3 voltages", fifteen_channel_panel()),
        ("three_phase_panel preset", preset("three_phase_panel")),
        ("home_single_phase_230v (multiplexed)", preset("home_single_phase_230v")),
    )
    for name, panel in cases:
        channels, cpu, wall = measure(panel, seconds)
        values = channels * seconds * panel.sample_rate_hz
        print(
            f"  {name:40s} {channels:2d} ch @ {panel.sample_rate_hz:.0f} S/s: "
            f"{seconds / cpu:6.0f}x real time (CPU), {seconds / wall:6.0f}x (wall), "
            f"{cpu / values * 1e9:5.1f} ns per channel-sample"
        )


if __name__ == "__main__":
    main()
