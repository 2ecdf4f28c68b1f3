"""Analytic test signals and a driver that feeds an engine in chunks (test helper)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from collector.events.engine import EventBatch, EventEngine
from collector.model import NS_PER_S, Block, Event

T0_NS = 1_700_000_000_000_000_000  # an arbitrary epoch time, aligned to 10 s

PHASE_SHIFT_RAD = {"A": 0.0, "B": -2 * np.pi / 3, "C": 2 * np.pi / 3}


def time_axis(fs_hz: float, duration_s: float) -> NDArray[np.float64]:
    return np.arange(round(fs_hz * duration_s)) / fs_hz


def stepped_envelope(
    t_s: NDArray[np.float64], steps: Sequence[tuple[float, float, float]]
) -> NDArray[np.float64]:
    """1.0 everywhere except ``factor`` on each [start_s, end_s)."""
    env = np.ones_like(t_s)
    for start, end, factor in steps:
        env[(t_s >= start) & (t_s < end)] = factor
    return env


def window(t_s: NDArray[np.float64], start_s: float, end_s: float) -> NDArray[np.float64]:
    """1.0 on [start_s, end_s), 0.0 elsewhere."""
    return ((t_s >= start_s) & (t_s < end_s)).astype(np.float64)


def sine(
    t_s: NDArray[np.float64], f_hz: float, rms: float, phase_rad: float = 0.3,
    envelope: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    env = np.ones_like(t_s) if envelope is None else envelope
    out: NDArray[np.float64] = np.sqrt(2.0) * rms * env * np.sin(2 * np.pi * f_hz * t_s + phase_rad)
    return out


@dataclass
class Collected:
    events: list[Event] = field(default_factory=list)
    started: list[Event] = field(default_factory=list)
    disturbed: list[tuple[int, int]] = field(default_factory=list)
    batches: int = 0

    def add(self, batch: EventBatch) -> None:
        self.events += batch.events
        self.started += batch.started
        self.disturbed += batch.disturbed
        self.batches += 1

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]


def run(
    engine: EventEngine,
    x: NDArray[np.float64],
    fs_hz: float,
    chunk: int | Sequence[int] = 2048,
    t0_ns: int = T0_NS,
    f_hz: float | None = None,
    flush: bool = True,
) -> Collected:
    """Feed ``x`` (n_channels, n) in chunks (an int, or a cycle of sizes), then flush."""
    out = Collected()
    sizes = [chunk] if isinstance(chunk, int) else list(chunk)
    a, k = 0, 0
    while a < x.shape[1]:
        b = min(a + sizes[k % len(sizes)], x.shape[1])
        block = Block(t0_ns + round(a * NS_PER_S / fs_hz), fs_hz, x[:, a:b])
        out.add(engine.process(block, f_hz=f_hz))
        a, k = b, k + 1
    if flush:
        out.add(engine.flush())
    return out


def seconds(ns: int, t0_ns: int = T0_NS) -> float:
    return (ns - t0_ns) / NS_PER_S
