"""Analytic test signals and a helper that streams them through the engine.

Only numpy closed forms: every expected value in the tests comes from these
formulas (or from standards' limits), not from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from collector.metrics_engine import CircuitSpec, MetricsEngine
from collector.model import NS_PER_S, Block, Metrics, SourceCapabilities

SQRT2 = float(np.sqrt(2.0))
# 2023-11-14 22:13:20 UTC, not on a 10-min tick
T0_NS = 1_700_000_000 * NS_PER_S


def times_s(fs_hz: float, seconds: float) -> NDArray[np.float64]:
    return np.arange(round(fs_hz * seconds)) / fs_hz


def tone(
    phase_rad: NDArray[np.float64], rms: float, order: int = 1, angle_rad: float = 0.0
) -> NDArray[np.float64]:
    """``sqrt(2) * rms * cos(order * phase + angle)``."""
    return SQRT2 * rms * np.cos(order * phase_rad + angle_rad)


def linear_drift_phase(
    t_s: NDArray[np.float64], f_start_hz: float, f_end_hz: float, span_s: float
) -> NDArray[np.float64]:
    """Phase [rad] of a fundamental whose frequency ramps linearly over ``span_s``."""
    rate = (f_end_hz - f_start_hz) / span_s
    return 2.0 * np.pi * (f_start_hz * t_s + 0.5 * rate * t_s**2)


def run(
    caps: SourceCapabilities,
    circuits: Sequence[CircuitSpec],
    x: NDArray[np.float64],
    fs_hz: float,
    *,
    t0_ns: int = T0_NS,
    block_sizes: Sequence[int] | None = None,
    flush: bool = False,
    disturbed_at: Callable[[int, int], Sequence[tuple[int, int]]] | None = None,
    **engine_kwargs: object,
) -> list[Metrics]:
    """Feed ``x`` (channels, samples) in blocks; return every Metrics emitted."""
    engine = MetricsEngine(caps, circuits, **engine_kwargs)  # type: ignore[arg-type]
    sizes = list(block_sizes) if block_sizes else [round(fs_hz * 0.5)]
    out: list[Metrics] = []
    pos = 0
    k = 0
    while pos < x.shape[1]:
        n = sizes[k % len(sizes)]
        t = t0_ns + round(pos * NS_PER_S / fs_hz)
        block = Block(t, fs_hz, x[:, pos : pos + n], contiguous=pos > 0)
        ranges = disturbed_at(t, t + round(n * NS_PER_S / fs_hz)) if disturbed_at else ()
        out.extend(engine.process(block, ranges))
        pos += n
        k += 1
    if flush:
        out.extend(engine.flush())
    return out


def select(
    metrics: Sequence[Metrics], interval: str, channel: str, phase: str | None = "any"
) -> list[Metrics]:
    return [
        m
        for m in metrics
        if m.interval == interval and m.channel == channel and (phase == "any" or m.phase == phase)
    ]


def values(metrics: Sequence[Metrics], name: str) -> NDArray[np.float64]:
    """Field across records; None becomes NaN."""
    return np.asarray(
        [np.nan if m.fields[name] is None else m.fields[name] for m in metrics], dtype=np.float64
    )
