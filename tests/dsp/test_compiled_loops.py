"""The compiled (numba) loops of the metrics engine against plain numpy statements.

Each loop must give what its numpy (or scipy) statement gives (to the last bit on
x86-64), since the engine's records are compared with the frozen reference
engine; and the engine compiles them when it is built, so blocks of any layout
must not make numba compile again at run time.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher
from numpy.typing import NDArray
from scipy import signal, sparse

from collector.dsp.aggregation import _contribution, _fold_arrays
from collector.dsp.harmonics import (
    _group_rms,
    _groups_from_raw,
    fundamental_phasor,
    groups_from_raw_spectra,
    harmonic_groups_rms,
)
from collector.dsp.interval import _fill_circuit_phases
from collector.dsp.records import _derive
from collector.dsp.resample import (
    InterpolationKernel,
    _equalize,
    _resample_16,
    _time_major_16,
    equalize_spectra,
    interpolation_kernel,
    resample_windows,
)
from collector.dsp.rms import _mean_products, _peaks
from collector.dsp.unbalance import _unbalance
from collector.dsp.zero_crossing import _filter_and_trigger
from collector.metrics_engine import MetricsEngine, circuits_from_capabilities
from collector.model import Block
from collector.sources.simulated import SimulatedSource
from tests.benchmarks.bench_simulated import fifteen_channel_panel

KERNEL = interpolation_kernel()
LOOPS: dict[str, Dispatcher] = {
    "resample": _resample_16,
    "time-major layout": _time_major_16,
    "equalise": _equalize,
    "harmonic groups": _group_rms,
    "groups from the FFT": _groups_from_raw,
    "mean products": _mean_products,
    "peaks": _peaks,
    "circuit phases": _fill_circuit_phases,
    "crossings": _filter_and_trigger,
    "aggregation": _fold_arrays,
    "aggregation terms": _contribution,
    "ratios": _derive,
    "unbalance": _unbalance,
}


def _sparse_resample(
    x: NDArray[np.float64],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    n_out: int,
    kernel: InterpolationKernel,
) -> NDArray[np.float64]:
    """Resampling as one sparse matrix (rows: output samples, columns: input samples)."""
    step = (end - start) / n_out
    pos = (start[:, None] + step[:, None] * np.arange(n_out)[None, :]).ravel()
    floor = np.floor(pos)
    q = np.rint((pos - floor) * kernel.phases).astype(np.intp)
    base = floor.astype(np.intp) - kernel.half
    cols = (base[:, None] + np.arange(kernel.taps)[None, :]).ravel()
    indptr = np.arange(0, pos.size * kernel.taps + 1, kernel.taps)
    op = sparse.csr_array((kernel.table[q].ravel(), cols, indptr), shape=(pos.size, x.shape[0]))
    return np.asarray(op @ x).reshape(start.size, n_out, x.shape[1])


@pytest.mark.parametrize("n_ch", [1, 3, 4, 15, 17, 40])  # 40: two groups of channels
def test_resampling_equals_the_sparse_product(n_ch: int) -> None:
    rng = np.random.default_rng(n_ch)
    x = rng.normal(0.0, 100.0, (7000, n_ch))
    length = rng.uniform(1270.0, 1290.0)
    start = 20.0 + rng.uniform(0.0, 1.0) + length * np.arange(5)
    end = start + length * rng.uniform(0.99, 1.01, 5)
    got = resample_windows(x, start, end, 1280, KERNEL)
    assert got.shape == (5, 1280, n_ch)
    # Bit-identical on x86-64; a compiler that fuses multiply-adds (GCC's default on
    # aarch64, i.e. a Raspberry Pi) changes the last bits of the sparse product.
    np.testing.assert_allclose(got, _sparse_resample(x, start, end, 1280, KERNEL),
                               rtol=0, atol=1e-12 * 100.0)


@pytest.mark.parametrize("n_ch", [1, 9, 15, 33])
def test_single_precision_resampling_is_the_sparse_product_to_single_precision(
    n_ch: int,
) -> None:
    # what the engine uses: the same sums in float32, ~1e-7 of the signal's scale
    rng = np.random.default_rng(10 + n_ch)
    x = rng.normal(0.0, 100.0, (7000, n_ch)) + 300.0 * np.sin(np.arange(7000) / 20.4)[:, None]
    start = 20.4 + 1280.6 * np.arange(5)
    end = start + 1280.6
    got = resample_windows(x, start, end, 1280, KERNEL, dtype=np.float32)
    assert got.dtype == np.float32
    assert got.shape == (5, 1280, n_ch)
    want = _sparse_resample(x, start, end, 1280, KERNEL)
    error = np.abs(got - want).max() / np.abs(x).max()
    assert 1e-9 < error < 1e-6  # single, not double, precision


def test_resampling_with_an_odd_number_of_taps_equals_the_sparse_product() -> None:
    # the loop is compiled for the kernel's taps; any count, odd too, gives the sums
    rng = np.random.default_rng(5)
    kernel = replace(KERNEL, taps=7, table=rng.uniform(-0.2, 1.0, (KERNEL.phases + 1, 7)))
    x = rng.normal(0.0, 1.0, (400, 3))
    start = np.array([10.25, 120.7])
    end = start + 110.3
    got = resample_windows(x, start, end, 96, kernel)
    np.testing.assert_allclose(got, _sparse_resample(x, start, end, 96, kernel),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_sections", [1, 2, 3])  # 2: the engine's band-pass, in registers
def test_the_crossing_filter_is_lfilter_section_by_section(n_sections: int) -> None:
    rng = np.random.default_rng(n_sections)
    sos = signal.butter(n_sections, [30.0, 80.0], btype="bandpass", output="sos", fs=6400.0)
    sos = sos[:n_sections] if n_sections < sos.shape[0] else sos
    x = 325.0 * np.sin(2 * np.pi * 50.0 * np.arange(3000) / 6400.0) + rng.normal(0, 5, 3000)
    zi = rng.normal(0.0, 1.0, (sos.shape[0], 2))
    want, want_zi = x, np.empty_like(zi)
    for k in range(sos.shape[0]):
        want, want_zi[k] = signal.lfilter(sos[k, :3], sos[k, 3:], want, zi=zi[k])
    y = np.empty_like(x)
    got_zi = zi.copy()
    candidates = np.empty(x.size, dtype=np.intp)
    found, _ = _filter_and_trigger(x, sos, got_zi, y, 0.0, False, 10.0, candidates)
    # the same operations in the same order: identical on x86-64 (a compiler that
    # fuses multiply-adds may change the last bits)
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12 * 325.0)
    np.testing.assert_allclose(got_zi, want_zi, rtol=0, atol=1e-12 * 325.0)
    # upward crossings of the filtered signal after it went below -10
    expected, armed = [], False
    for j in range(x.size):
        armed = armed or want[j] < -10.0
        if (want[j - 1] if j else 0.0) < 0.0 <= want[j]:
            if armed:
                expected.append(j + 1)  # counting the previous block's last sample as 0
            armed = False
    assert candidates[:found].tolist() == expected
    assert found >= 22  # 23.4 cycles of 50 Hz


def _numpy_groups(spectra: NDArray[np.complex128], n: int, cycles: int, orders: int) -> NDArray:
    """IEC 61000-4-7 harmonic groups with numpy: line powers, summed by reshaping."""
    half = cycles // 2
    power = spectra.real**2 + spectra.imag**2
    first = cycles - half + 1
    inner = power[:, first : first + orders * cycles, :]
    inner = inner.reshape(power.shape[0], orders, cycles, power.shape[2]).sum(axis=2)
    centres = np.arange(1, orders + 1) * cycles
    group = inner - 0.5 * power[:, centres + half, :] + 0.5 * power[:, centres - half, :]
    return np.asarray(np.sqrt(np.maximum(group, 0.0) * (2.0 / n**2)))


@pytest.mark.parametrize(("cycles", "orders"), [(10, 50), (12, 41), (10, 1)])
def test_harmonic_groups_equal_the_numpy_statement(cycles: int, orders: int) -> None:
    rng = np.random.default_rng(cycles + orders)
    n = 128 * cycles
    spectra = rng.normal(0.0, 1e4, (3, n // 2 + 1, 15)) * np.exp(2j * np.pi * rng.random())
    spectra[1, 3 * cycles, 4] = np.nan  # a NaN reaches only its own group
    got = harmonic_groups_rms(spectra, n, cycles, orders)
    # identical on x86-64; fused multiply-adds elsewhere may change the last bits
    np.testing.assert_allclose(got, _numpy_groups(spectra, n, cycles, orders), rtol=1e-13)
    if orders >= 3:
        assert np.isnan(got[1, 2, 4])
        assert np.isfinite(got).sum() == got.size - 1


@pytest.mark.parametrize(("cycles", "orders"), [(10, 50), (12, 41)])
def test_groups_from_the_raw_fft_equal_groups_of_the_equalised_spectra(
    cycles: int, orders: int
) -> None:
    rng = np.random.default_rng(cycles)
    n = 128 * cycles
    raw = (rng.normal(0.0, 1e4, (3, n // 2 + 1, 15))
           + 1j * rng.normal(0.0, 1e4, (3, n // 2 + 1, 15))).astype(np.complex64)
    raw[1, 3 * cycles, 4] = np.nan
    window_samples = np.array([n * 0.995, n * 1.0, n * 1.012])
    groups, phasor = groups_from_raw_spectra(raw, window_samples, KERNEL, n, cycles, orders)
    spectra = equalize_spectra(raw, window_samples, KERNEL)
    np.testing.assert_allclose(groups, harmonic_groups_rms(spectra, n, cycles, orders), rtol=1e-12)
    np.testing.assert_allclose(phasor, fundamental_phasor(spectra, n, cycles), rtol=1e-12)
    assert np.isnan(groups[1, 2, 4])
    assert np.isfinite(groups).sum() == groups.size - 1


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
