"""Synchronous resampling: each window becomes exactly ``cycles * M`` samples.

A basic-interval window spans a whole number of cycles of the measured
fundamental but a fractional number of ADC samples.  Resampling it to ``M``
samples per cycle (``M`` a power of two) makes the DFT bins fall exactly on
the harmonic and inter-harmonic frequencies (5 Hz apart), as IEC 61000-4-7
requires, without spectral leakage from the window edges.

The interpolator is a windowed sinc (Kaiser window, ``taps`` samples of
support) tabulated at ``phases`` fractional positions (nearest position; with
2048 phases the timing error is below 1/4096 sample).  Resampling is one
compiled loop (numba), built for the block's channel count, over the windows
and output samples of a block, the channels innermost and contiguous; it adds
the taps in the order a sparse matrix product would, so on x86-64 it gives the
same values to the last bit (where a compiler fuses multiply-adds, as GCC does
on aarch64, the last bits of either may differ).

Cost is proportional to the taps, so the kernel is short (22 taps, beta 8)
and its known pass-band droop (-0.07 dB at 0.41 fs, -1 dB at 0.45 fs) is
undone in the frequency domain by :func:`equalize_spectra`: the continuous
reconstruction has the spectrum ``X(f) H(f)``, so dividing each line by
``H(f)`` is exact for the wanted band whatever the resampling ratio.

What cannot be undone are the images of the input at ``fs - f``, ``fs + f``
...  Those of the fundamental and the low harmonics fall in 0.9-1.1 fs and
1.9-2.1 fs, attenuated by more than 92 dB; those of the higher (small)
harmonics fall in 0.6-0.9 fs, attenuated by more than 50 dB.  When the
resampling ratio is 1 (6400 Hz at exactly 50 Hz: 128 samples per cycle in and
out) the image of a line at ``f`` folds back onto ``f`` itself, so a harmonic
at the reported limit of 0.41 fs can be off by |H(fs - f)| / |H(f)| = 0.85 %
(0.06 % at the 50th harmonic of 50 Hz sampled at 6400 Hz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from collector.model import column_slice_of

# Highest frequency, as a fraction of the input sample rate, that is reported
# (after equalisation); harmonic orders above it are not.
PASSBAND_EDGE = 0.41
# Lines up to this frequency are equalised; above it the droop is steep and
# equalising would mostly amplify noise near Nyquist.
_EQUALIZED_EDGE = 0.45
# The resampling loop takes the channels in groups of at most _GROUP, each padded
# to a multiple of _LANES, and is compiled once per group width. 16 is two AVX2
# registers of singles (x86-64), four NEON registers (the Pi's Arm cores); with 8
# the compiler did not vectorise, and the loop was 3x slower per channel.
_LANES = 16
_GROUP = 32
# Taps of the interpolator the engine uses (interpolation_kernel's default).
TAPS = 22


@dataclass(frozen=True, slots=True)
class InterpolationKernel:
    """A tabulated windowed-sinc interpolator.

    Attributes
    ----------
    taps : int
        Input samples per output sample (even).
    beta : float
        Kaiser window shape parameter.
    phases : int
        Fractional positions tabulated between two input samples.
    table : NDArray[np.float64]
        Weights, shape (phases + 1, taps); row ``q`` is for fraction q/phases.
    inverse_response : NDArray[np.float64]
        ``1 / |H(f)|`` on ``f = k / (2 * (len - 1))``, 0..0.5 cycles/sample,
        set to 1 above the equalised band.
    table_single : NDArray[np.float32]
        ``table`` rounded to single precision.
    """

    taps: int
    beta: float
    phases: int
    table: NDArray[np.float64]
    inverse_response: NDArray[np.float64]
    table_single: NDArray[np.float32]

    @property
    def half(self) -> int:
        """Samples needed before ``floor(p)`` (``taps/2 - 1``); ``taps/2`` after it."""
        return self.taps // 2 - 1


def _kaiser_sinc(u: NDArray[np.float64], taps: int, beta: float) -> NDArray[np.float64]:
    inside = np.clip(1.0 - (2.0 * u / taps) ** 2, 0.0, None)
    window = np.i0(beta * np.sqrt(inside)) / np.i0(beta)
    return np.asarray(np.sinc(u) * window, dtype=np.float64)


def interpolation_kernel(
    taps: int = TAPS, beta: float = 8.0, phases: int = 2048
) -> InterpolationKernel:
    """Tabulate a Kaiser-windowed sinc interpolator.

    Parameters
    ----------
    taps : int
        Support in input samples; even, >= 4.
    beta : float
        Kaiser shape parameter.
    phases : int
        Table resolution per input sample.
    """
    if taps < 4 or taps % 2:
        raise ValueError(f"taps: must be an even number >= 4, got {taps}")
    if phases < 2:
        raise ValueError(f"phases: must be >= 2, got {phases}")
    frac = np.arange(phases + 1) / phases
    offsets = np.arange(taps) - (taps // 2 - 1)
    table = _kaiser_sinc(offsets[None, :] - frac[:, None], taps, beta)
    # unit DC gain at every phase, so a constant is reproduced exactly
    table /= table.sum(axis=1, keepdims=True)
    grid = np.linspace(0.0, 0.5, 1025)
    response = _table_response(table, taps, phases, grid)
    inverse = np.where(grid <= _EQUALIZED_EDGE, 1.0 / response, 1.0)
    return InterpolationKernel(
        taps=taps, beta=beta, phases=phases, table=table, inverse_response=inverse,
        table_single=table.astype(np.float32),
    )


def _table_response(
    table: NDArray[np.float64], taps: int, phases: int, f: NDArray[np.float64]
) -> NDArray[np.float64]:
    # The table samples the (normalised) continuous kernel at u = t - q/phases.
    # Every ``stride``-th row samples it 1/32 sample apart, plenty for a smooth
    # kernel evaluated below 2 cycles/sample, and keeps this fast.
    stride = max(1, phases // 32)
    rows = np.arange(0, phases, stride)
    offsets = np.arange(taps) - (taps // 2 - 1)
    u = (offsets[None, :] - (rows / phases)[:, None]).ravel()
    h = table[rows].ravel()
    # a sum of products rather than a matrix-vector product: OpenBLAS would start
    # its threads for one this size, and they spin on the other cores afterwards
    terms = np.cos(2.0 * math.pi * f[:, None] * u[None, :])
    terms *= h
    return np.asarray(np.abs(terms.sum(axis=1)) * stride / phases)


def kernel_response(
    kernel: InterpolationKernel, f_per_sample: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Magnitude response of the continuous-time interpolation kernel.

    Parameters
    ----------
    kernel : InterpolationKernel
    f_per_sample : NDArray[np.float64]
        Frequencies as a fraction of the input sample rate [cycles/sample].

    Returns
    -------
    NDArray[np.float64]
        |H(f)| [1]; 1 is perfect, and an image at ``fs - f`` is scaled by
        ``|H(1 - f)|``.
    """
    f = np.atleast_1d(np.asarray(f_per_sample, dtype=np.float64))
    return _table_response(kernel.table, kernel.taps, kernel.phases, f)


def equalize_spectra(
    spectra: NDArray[np.complexfloating],
    window_samples: NDArray[np.float64],
    kernel: InterpolationKernel,
    *,
    in_place: bool = False,
) -> NDArray[np.complex128]:
    """Undo the interpolator's pass-band droop on resampled-window spectra.

    Parameters
    ----------
    spectra : NDArray[np.complexfloating]
        ``rfft`` of resampled windows along axis 1, shape (W, K, C); single
        precision (from single-precision windows) is widened on the way.
    window_samples : NDArray[np.float64]
        Length of each window in input samples, shape (W,); line ``m`` is at
        ``m / window_samples`` cycles per input sample.
    kernel : InterpolationKernel
    in_place : bool
        Scale ``spectra`` itself (it must be writeable and double precision)
        instead of a new array.

    Returns
    -------
    NDArray[np.complex128]
        Equalised spectra: ``spectra`` itself when ``in_place`` and double
        precision, else a new array.
    """
    out: NDArray[np.complex128]
    if in_place and spectra.dtype == np.complex128:
        out = spectra  # type: ignore[assignment]  # checked just above
    else:
        out = np.empty(spectra.shape, dtype=np.complex128)
    step = 0.5 / (kernel.inverse_response.size - 1)
    _equalize(
        spectra, out, np.asarray(window_samples, dtype=np.float64), kernel.inverse_response, step
    )
    return out


@numba.njit(cache=True)
def equalizer_gain(inverse: NDArray[np.float64], step: float, f: float) -> float:
    """``1/|H(f)|`` from ``inverse`` tabulated at ``0, step, ... 0.5`` cycles per
    sample, interpolated linearly (as ``np.interp``); 1 above 0.5.  Compiled, for
    the loops that equalise spectra."""
    if f > 0.5:
        return 1.0
    j = min(int(f / step), inverse.size - 2)
    return float(inverse[j] + (inverse[j + 1] - inverse[j]) / step * (f - j * step))


@numba.njit(cache=True)
def _equalize(
    spectra: NDArray[np.complexfloating],
    out: NDArray[np.complex128],
    window_samples: NDArray[np.float64],
    inverse: NDArray[np.float64],
    step: float,
) -> None:
    """``out`` = line ``m`` of window ``w`` scaled by ``1/|H(m / window_samples[w])|``.

    ``inverse`` is tabulated at ``0, step, 2 step, ... 0.5``; between two
    entries the gain is interpolated linearly (as ``np.interp``), and above
    0.5 cycles per sample it is 1.  ``out`` may be ``spectra`` itself.
    """
    for w in range(spectra.shape[0]):
        for m in range(spectra.shape[1]):
            gain = equalizer_gain(inverse, step, m / window_samples[w])
            for c in range(spectra.shape[2]):
                line = spectra[w, m, c]
                out[w, m, c] = complex(float(line.real) * gain, float(line.imag) * gain)


def synchronous_samples_per_cycle(fs_hz: float, nominal_frequency_hz: float) -> int:
    """Power-of-two samples per cycle ``M`` for resampled windows.

    The smallest power of two not below 97 % of the nominal samples per cycle,
    so a nominal 128 samples per cycle stays 128 (a ratio near 1 for the usual
    6.4 kHz) and 115.2 becomes 128.  At least 8.
    """
    spc = fs_hz / nominal_frequency_hz
    if not spc > 2:
        raise ValueError(f"fs_hz: must exceed twice the nominal frequency, got {fs_hz}")
    return max(8, 1 << math.ceil(math.log2(0.97 * spc)))


def resample_windows(
    x: NDArray[np.float64],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    n_out: int,
    kernel: InterpolationKernel,
    dtype: type[np.float32] | type[np.float64] = np.float64,
) -> NDArray[np.floating]:
    """Resample windows with fractional boundaries to ``n_out`` samples each.

    Parameters
    ----------
    x : NDArray[np.float64]
        Samples, time-major, shape (L, n_channels); no NaN.
    start, end : NDArray[np.float64]
        Window boundaries [samples, fractional, relative to ``x[0]``], shape (W,).
        Output sample ``j`` of window ``w`` is taken at
        ``start[w] + j * (end[w] - start[w]) / n_out``, so the last one is one
        output step before ``end`` (a periodic window).
    n_out : int
        Samples per output window.
    kernel : InterpolationKernel
    dtype : type
        Precision of the arithmetic and the result: ``np.float32`` halves the
        memory traffic (relative error ~1e-7 of the signal, see
        docs/measurement.md), ``np.float64`` gives the sparse product's values.

    Returns
    -------
    NDArray[np.floating]
        Shape (W, n_out, n_channels); a view, channels not contiguous.
    """
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    n_windows = start.size
    if n_windows == 0:
        return np.empty((0, n_out, x.shape[1]))
    step = (end - start) / n_out
    # the windows ascend: the first and the last output sample bound the support
    first = math.floor(start[0]) - kernel.half
    last = math.floor(start[-1] + step[-1] * (n_out - 1)) - kernel.half
    if first < 0 or last + kernel.taps > x.shape[0]:
        raise ValueError(
            f"start/end: the kernel needs samples {first}..{last + kernel.taps - 1}, "
            f"x has 0..{x.shape[0] - 1}"
        )
    # channels in groups of at most _GROUP, each padded to a multiple of _LANES:
    # the compiled loop for a group has its width and the taps as constants
    n_ch = x.shape[1]
    table: NDArray[np.floating] = kernel.table if dtype is np.float64 else kernel.table_single
    # the engine's x is the transpose of a column slice of its channel-major buffer:
    # a compiled loop then lays the rows out time-major in single precision
    rows = column_slice_of(x.T) if dtype is np.float32 else None
    out: NDArray[np.floating] | None = None
    for c0 in range(0, n_ch, _GROUP):
        part = x[:, c0 : c0 + _GROUP]
        k = part.shape[1]
        padded = _aligned_empty((x.shape[0], -(-k // _LANES) * _LANES), dtype)
        if rows is not None:
            _TIME_MAJOR[padded.shape[1]](rows[0], c0, k, rows[1], padded)
        else:
            padded[:, :k] = part
            padded[:, k:] = 0.0
        args = (padded, start, step, n_out, table, kernel.phases, kernel.half)
        if kernel.taps == TAPS:
            group = _LOOPS[padded.shape[1]](*args)
        else:
            group = _LOOPS_ANY_TAPS[padded.shape[1]](*args, kernel.taps)
        if k == n_ch:
            return group[:, :, :n_ch]  # a view: no copy for the usual single group
        if out is None:
            out = np.empty((n_windows, n_out, n_ch), dtype=dtype)
        out[:, :, c0 : c0 + k] = group[:, :, :k]
    assert out is not None
    return out


def _aligned_empty(shape: tuple[int, int], dtype: type[np.floating]) -> NDArray[np.floating]:
    """``np.empty(shape, dtype)`` starting on a 64-byte boundary (a cache line): a row
    of 16 singles is then one line, where numpy's 16-byte alignment splits every
    other load of the resampling loop across two (10 % slower)."""
    size = shape[0] * shape[1] * np.dtype(dtype).itemsize
    raw = np.empty(size + 64, dtype=np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip : skip + size].view(dtype).reshape(shape)


@numba.njit(inline="always")
def _resample(
    x: NDArray[np.floating],
    start: NDArray[np.float64],
    step: NDArray[np.float64],
    n_out: int,
    table: NDArray[np.floating],
    phases: int,
    half: int,
    width: int,
    taps: int,
) -> NDArray[np.floating]:
    """The loop of :func:`resample_windows` for ``width`` channels (the columns of
    ``x``) and ``taps`` taps; called only from the entry points below, which pass
    both as constants. Inlined into each (numba IR), so the compiler sees them.

    With the channel count known, the compiler unrolls the channels into vector
    registers and keeps each output's sums there, taps added first to last in the
    precision of ``x`` and ``table`` (the values of the sparse product). Indices are
    unsigned so that no negative-index wrap-around is computed per load. A loop
    with a run-time channel count kept the sums in memory and was 2.7x slower.
    """
    samples = x.ravel()
    weights = table.ravel()
    out = np.empty((start.size, n_out, width), dtype=x.dtype)
    flat = out.ravel()
    row = numba.uintp(width)
    o = numba.uintp(0)
    for w in range(start.size):
        for j in range(n_out):
            pos = start[w] + step[w] * j
            floor = np.floor(pos)
            q = numba.uintp(np.rint((pos - floor) * phases)) * numba.uintp(taps)
            base = numba.uintp(int(floor) - half) * row
            for c in range(width):
                first = base + numba.uintp(c)
                acc = weights[q] * samples[first]
                for t in range(1, taps):
                    acc += weights[q + numba.uintp(t)] * samples[first + numba.uintp(t) * row]
                flat[o + numba.uintp(c)] = acc
            o += row
    return out


# One entry point per group width (a multiple of _LANES up to _GROUP), with the
# engine's taps as a constant, and one per width for any other kernel (tests) with
# the taps at run time. Separate functions, not closures made per width: numba could
# not load two cached closures of one function into one process (the second's
# environment was missing: "'descr' is NULL" on return).


_F = NDArray[np.floating]
_D = NDArray[np.float64]


@numba.njit(cache=True)
def _resample_16(x: _F, start: _D, step: _D, n_out: int, table: _F, phases: int,
                 half: int) -> _F:
    return _resample(x, start, step, n_out, table, phases, half, 16, TAPS)


@numba.njit(cache=True)
def _resample_32(x: _F, start: _D, step: _D, n_out: int, table: _F, phases: int,
                 half: int) -> _F:
    return _resample(x, start, step, n_out, table, phases, half, 32, TAPS)


@numba.njit(cache=True)
def _resample_16_taps(x: _F, start: _D, step: _D, n_out: int, table: _F, phases: int,
                      half: int, taps: int) -> _F:
    return _resample(x, start, step, n_out, table, phases, half, 16, taps)


@numba.njit(cache=True)
def _resample_32_taps(x: _F, start: _D, step: _D, n_out: int, table: _F, phases: int,
                      half: int, taps: int) -> _F:
    return _resample(x, start, step, n_out, table, phases, half, 32, taps)


# by group width: the engine's taps as a constant, or any taps
_LOOPS = {16: _resample_16, 32: _resample_32}
_LOOPS_ANY_TAPS = {16: _resample_16_taps, 32: _resample_32_taps}


@numba.njit(inline="always")
def _time_major(src: _D, row0: int, k: int, offset: int, out: _F, width: int) -> None:
    """``out[t, c] = src[row0 + c, offset + t]`` in single precision for the ``k``
    rows, 0 in the other columns up to ``width``: numpy's transposing cast of the
    same, 1.6x faster (the width a constant, the rows read in place)."""
    for t in range(out.shape[0]):
        for c in range(width):
            out[t, c] = np.float32(src[row0 + c, offset + t]) if c < k else np.float32(0.0)


@numba.njit(cache=True)
def _time_major_16(src: _D, row0: int, k: int, offset: int, out: _F) -> None:
    _time_major(src, row0, k, offset, out, 16)


@numba.njit(cache=True)
def _time_major_32(src: _D, row0: int, k: int, offset: int, out: _F) -> None:
    _time_major(src, row0, k, offset, out, 32)


_TIME_MAJOR = {16: _time_major_16, 32: _time_major_32}


def compile_loops(n_channels: int = 1) -> None:
    """Compile this module's numba loops now, or load them from numba's cache: at
    start-up rather than at the first block. ``n_channels``: the channels that the
    engine resamples (single precision) at once."""
    for c0 in range(0, n_channels, _GROUP):
        width = -(-min(_GROUP, n_channels - c0) // _LANES) * _LANES
        _TIME_MAJOR[width](np.zeros((1, 4)), 0, 1, 0, np.empty((4, width), dtype=np.float32))
        _LOOPS[width](
            np.zeros((TAPS + 8, width), dtype=np.float32), np.ones(1), np.ones(1), 1,
            np.ones((2, TAPS), dtype=np.float32), 1, 1,
        )
    for cplx in (np.complex128, np.complex64):
        spectra = np.ones((1, 2, 1), dtype=cplx)
        _equalize(spectra, np.empty((1, 2, 1), dtype=np.complex128), np.ones(1), np.ones(3), 0.25)
    spectra = np.ones((1, 2, 1), dtype=np.complex128)
    _equalize(spectra, spectra, np.ones(1), np.ones(3), 0.25)
