"""The compiled loops behind the interval values against the numpy statements they replace.

The engine's records are compared exactly with the frozen reference engine
(test_engine_equivalence), so :func:`window_mean_product` must give what
``window_mean(x[a] * x[b])`` gives to the last bit; and the loops are compiled
when the engine is built, so no kind of block may make numba compile again.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher

from collector.dsp.interval import _fill_circuit_phases
from collector.dsp.rms import _mean_products, window_mean, window_mean_product
from collector.metrics_engine import MetricsEngine, circuits_from_capabilities
from collector.model import Block
from collector.sources.simulated import SimulatedSource
from tests.benchmarks.bench_simulated import fifteen_channel_panel

LOOPS: dict[str, Dispatcher] = {
    "mean products": _mean_products,
    "circuit phases": _fill_circuit_phases,
}


@pytest.mark.parametrize("seed", range(6))
def test_mean_products_equal_window_mean_of_the_products(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_ch, n_w = 7, 5
    # window lengths from under one sample (one reduceat element) to beyond
    # numpy's 128-element pairwise block, with remainders modulo 8
    length = [0.6, 5.3, 130.9, 1280.37, 3001.2][seed % 5]
    x = rng.normal(0.0, 300.0, (n_ch, int(length * n_w) + 40))
    start = 3.0 + rng.uniform(0.0, 1.0) + length * np.arange(n_w)
    end = start + length * rng.uniform(0.97, 1.0, n_w)
    a = rng.integers(0, n_ch, 9)
    b = rng.integers(0, n_ch, 9)
    got = window_mean_product(x, a, b, start, end)
    assert got.shape == (n_w, 9)
    np.testing.assert_array_equal(got, window_mean(x[a] * x[b], start, end))


def test_mean_products_reject_windows_outside_the_samples() -> None:
    x = np.ones((2, 100))
    both = np.array([0, 1])
    with pytest.raises(ValueError, match="outside x"):
        window_mean_product(x, both, both, np.array([90.0]), np.array([99.5]))


def test_the_loops_are_compiled_once_for_every_kind_of_block() -> None:
    panel = fifteen_channel_panel()
    source = SimulatedSource(panel, seed=3, duration_s=1.5, block_duration_s=0.5)
    engine = MetricsEngine(source.capabilities, circuits_from_capabilities(source.capabilities))
    compiled = {name: len(loop.signatures) for name, loop in LOOPS.items()}
    assert all(compiled.values())
    blocks = list(source.blocks())
    read_only = blocks[1].samples.copy()
    read_only.setflags(write=False)
    variants = [
        blocks[0].samples.astype(np.float32),
        read_only,
        np.asfortranarray(blocks[2].samples),
    ]
    n_out = 0
    for block, samples in zip(blocks, variants, strict=True):
        n_out += len(engine.process(Block(block.t0_ns, block.fs_hz, samples)))
    n_out += len(engine.flush())
    assert n_out > 0
    assert {name: len(loop.signatures) for name, loop in LOOPS.items()} == compiled
