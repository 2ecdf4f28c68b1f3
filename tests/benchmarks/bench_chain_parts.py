"""Where the measurement chain's CPU goes, and what the numeric work alone costs.

Run ``python -m tests.benchmarks.bench_chain_parts [block_s]`` (default 1-s blocks).
Prints, per second of signal (12 circuits + 3 voltages at 6.4 kS/s, the issue's
benchmark shape, 60 s of it):

- the metrics engine's CPU time split by step (each step's function is wrapped
  with ``time.process_time``; the wrappers add a little);
- the same for steps of both engines inside the whole chain at the collector's
  settings (0.1-s source blocks held to 1 s): what a step costs among the others,
  where the cache holds what the steps before it left (``--part chain``);
- the floor: the numeric primitives Class A measurement needs for that signal,
  timed alone on random samples (resampling 75 windows of 15 channels through the
  22-tap interpolator and their FFTs, both in single precision as the engine does
  them, one pass of squares, half-cycle sums, peaks).
  500x real time leaves 2.0 ms per second of signal for everything, bookkeeping
  included.

Not a test: the figures depend on the machine; results go to docs/performance.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft

import collector.dsp.aggregation as agg
import collector.dsp.interval as interval
import collector.events.engine as event_engine_module
import collector.metrics_engine as engine_module
import collector.pipeline as pipeline_module
from collector.assembly import RunSettings, build_pipeline
from collector.dsp.resample import interpolation_kernel, resample_windows
from collector.model import Block
from collector.sources.simulated import SimulatedSource
from tests.benchmarks.bench_simulated import fifteen_channel_panel

SECONDS = 60.0

_spent: dict[str, float] = {}


def _wrap(module: Any, name: str) -> None:
    inner = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            _spent[name] = _spent.get(name, 0.0) + time.process_time() - t0

    setattr(module, name, timed)


# (module, function) timed inside the whole chain; each is looked up through the
# module that calls it
_CHAIN_STEPS = (
    (pipeline_module, "_join"),
    (event_engine_module, "half_cycle_rms"),
    (engine_module, "positive_crossings"),
    (engine_module, "frame_windows"),
    (engine_module, "measure_channels"),
    (interval, "window_peaks"),
    (interval, "resample_windows"),
    (interval, "groups_from_raw_spectra"),
    (engine_module, "interval_values"),
    (agg, "_fold"),
    (engine_module, "to_metrics"),
)


def _panel(block_s: float) -> tuple[SimulatedSource, list[Block], RunSettings]:
    panel = fifteen_channel_panel()
    source = SimulatedSource(panel, seed=7, duration_s=SECONDS, block_duration_s=block_s)
    settings = RunSettings(
        nominal_voltage_v=230.0,
        circuit_ratings_a={c.id: c.breaker_rating_a for c in panel.circuits},
    )
    return source, list(source.blocks()), settings


def _print_steps(total: float, heading: str) -> None:
    print(f"{heading}: {total / SECONDS * 1e3:.2f} ms per s of signal "
          f"({SECONDS / total:.0f}x real time, with the timers); steps (measure_channels "
          f"includes resample_windows, groups_from_raw_spectra and window_peaks; _fold is "
          f"the aggregation's):")
    for name, spent in sorted(_spent.items(), key=lambda kv: -kv[1]):
        print(f"  {name:24s} {spent / SECONDS * 1e3:6.3f} ms/s")


def chain_steps() -> None:
    for module, name in _CHAIN_STEPS:
        _wrap(module, name)
    source, blocks, settings = _panel(0.1)
    warm = build_pipeline(source.capabilities, settings, [])
    for block in blocks[:100]:
        warm.process(block)
    pipeline = build_pipeline(source.capabilities, settings, [])
    _spent.clear()
    t0 = time.process_time()
    for block in blocks:
        pipeline.process(block)
    _print_steps(time.process_time() - t0, "whole chain, 0.1-s blocks held to 1 s")


def metrics_steps(block_s: float) -> None:
    for module, name in _CHAIN_STEPS:
        if module is not pipeline_module and module is not event_engine_module:
            _wrap(module, name)
    source, blocks, settings = _panel(block_s)
    pipeline = build_pipeline(source.capabilities, settings, [])
    events, metrics = pipeline._events, pipeline._metrics
    disturbed = [events.process(b, 50.0).disturbed for b in blocks]
    _spent.clear()
    t0 = time.process_time()
    for block, ranges in zip(blocks, disturbed, strict=True):
        metrics.process(block, ranges)
    _print_steps(time.process_time() - t0, f"metrics engine alone, {block_s:g}-s blocks")


def _cost_ms(fn: Callable[[], object], repeat: int = 300) -> float:
    fn()
    t0 = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - t0) / repeat * 1e3


def floor() -> None:
    """One second of signal: 15 channels, 6400 samples, five 10-cycle windows."""
    kernel = interpolation_kernel()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((15, 6400 + 100))
    x_t = np.ascontiguousarray(x.T)  # time-major, the resampler's fastest layout
    start = 30 + np.arange(5) * 1280.37
    end = start + 1280.37
    # single precision, as the engine resamples and transforms
    windows = resample_windows(x_t, start, end, 1280, kernel, dtype=np.float32)
    half_cycles = np.arange(0, 6400, 64)
    parts = {
        "resampling (22 taps, compiled, float32)": lambda: resample_windows(
            x_t, start, end, 1280, kernel, dtype=np.float32),
        "FFT of 75 windows x 1280 (float32)": lambda: scipy.fft.rfft(windows, axis=1),
        "squares, one pass": lambda: x * x,
        "half-cycle sums of squares": lambda: np.add.reduceat(x * x, half_cycles, axis=1),
        "peak per window": lambda: np.maximum.reduceat(np.abs(x), half_cycles[::20], axis=1),
    }
    total = 0.0
    print("floor, numeric work alone per s of signal:")
    for name, fn in parts.items():
        ms = _cost_ms(fn)
        total += ms
        print(f"  {name:40s} {ms:6.3f} ms")
    print(f"  {'sum':40s} {total:6.3f} ms -> {1e3 / total:.0f}x real time before any "
          f"bookkeeping (500x allows 2.0 ms for everything)")


def main() -> None:
    # Each part runs in a fresh process: after one has run, process_time() of the
    # other's work reads 15-50 % higher in the same process (seen, not explained).
    if len(sys.argv) > 1 and sys.argv[1] == "--part":
        part, block_s = sys.argv[2], float(sys.argv[3])
        if part == "floor":
            floor()
        elif part == "chain":
            chain_steps()
        else:
            metrics_steps(block_s)
        return
    block_s = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for part in ("metrics", "chain", "floor"):
        subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_chain_parts", "--part",
                        part, str(block_s)], check=True)


if __name__ == "__main__":
    main()
