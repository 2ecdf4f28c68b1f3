"""Throughput of the metrics chain: 3 voltages + 12 circuits at 6.4 kS/s.

Run ``python -m tests.benchmarks.bench_dsp [seconds] [block_s]``.  Prints the
real-time factor (signal seconds per CPU second on one core) and the CPU
time per 200-ms basic interval, for the whole engine and for its DSP core.
Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import subprocess
import sys
import time

import numpy as np

from collector.metrics_engine import CircuitSpec, MetricsEngine
from collector.model import NS_PER_S, Block, ChannelInfo, Phase, Quantity, SourceCapabilities

FS_HZ = 6400.0
F_HZ = 50.02
PHASES = (Phase.A, Phase.B, Phase.C)


def make_source(seconds: float) -> tuple[SourceCapabilities, list[CircuitSpec], np.ndarray]:
    """3 phase voltages with 5th/7th harmonics, 12 distorted circuit currents."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * FS_HZ)) / FS_HZ
    channels = [ChannelInfo(f"v{p}", Quantity.VOLTAGE, p, rate_hz=FS_HZ) for p in PHASES]
    rows = []
    for k, _p in enumerate(PHASES):
        shift = -2 * np.pi * k / 3
        w = 2 * np.pi * F_HZ * t + shift
        rows.append(325 * np.sin(w) + 10 * np.sin(5 * w) + 5 * np.sin(7 * w))
    circuits = []
    for n in range(12):
        p = PHASES[n % 3]
        cid = f"c{n}"
        channels.append(ChannelInfo(f"i{n}", Quantity.CURRENT, p, circuit=cid, rate_hz=FS_HZ))
        circuits.append(CircuitSpec(cid, (f"i{n}",), (f"v{p}",)))
        w = 2 * np.pi * F_HZ * t - 2 * np.pi * (n % 3) / 3 - rng.uniform(0, 1)
        rows.append(rng.uniform(1, 20) * (np.sin(w) + 0.3 * np.sin(3 * w) + 0.1 * np.sin(11 * w)))
    x = np.vstack(rows) + rng.normal(0, 0.05, (len(rows), t.size))
    caps = SourceCapabilities(tuple(channels), nominal_voltage_v=230.0)
    return caps, circuits, x


def run(
    seconds: float, block_s: float, aggregations: tuple[str, ...], batch_s: float = 0.0,
    to_aggregates: bool = False,
) -> tuple[float, int]:
    caps, circuits, x = make_source(seconds)
    engine = MetricsEngine(caps, circuits, aggregations=aggregations, batch_s=batch_s,
                           batch_to_aggregates=to_aggregates)
    step = int(block_s * FS_HZ)
    t0 = 1_700_000_000 * NS_PER_S
    blocks = [
        Block(t0 + round(k * NS_PER_S / FS_HZ), FS_HZ, x[:, k : k + step], contiguous=k > 0)
        for k in range(0, x.shape[1], step)
    ]
    n_metrics = 0
    cpu0 = time.process_time()
    for b in blocks:
        n_metrics += len(engine.process(b))
    cpu = time.process_time() - cpu0
    return cpu, n_metrics


_ALL = ("basic", "150c", "10min", "2h")
_CASES: dict[str, tuple[tuple[str, ...], float, bool]] = {
    "all aggregations": (_ALL, 0.0, False),
    "no basic records": (("150c", "10min", "2h"), 0.0, False),
    "no records at all": ((), 0.0, False),
    "all, batch_s=1": (_ALL, 1.0, False),
    # what the collector does (collector.assembly.RunSettings)
    "all, cut at aggregates": (_ALL, 5.0, True),
}


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    block_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    if len(sys.argv) > 3:
        # one case, in a process of its own: after one engine has run, the next
        # one's process_time() reads 15-50 % higher in the same process
        label = sys.argv[3]
        aggs, batch_s, to_aggregates = _CASES[label]
        cpu, n = run(seconds, block_s, aggs, batch_s, to_aggregates)
        print(
            f"{label:22s}: {seconds:.0f} s of 15 channels at {FS_HZ:.0f} S/s, "
            f"blocks of {block_s} s: CPU {cpu:.2f} s -> {seconds / cpu:.0f}x real time, "
            f"{cpu / (seconds / 0.2) * 1e3:.3f} ms per basic interval, {n} Metrics"
        )
        return
    for label in _CASES:
        subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_dsp", str(seconds),
                        str(block_s), label], check=True)
    if os.environ.get("PROFILE"):
        prof = cProfile.Profile()
        prof.runcall(run, seconds, block_s, ("basic", "150c", "10min", "2h"))
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
