"""RMS, peak and sample counts over windows with fractional boundaries.

The mean over a window ``[s0, s1)`` with fractional boundaries is the
integral of the linearly interpolated samples divided by ``s1 - s0``, so it
covers exactly the window (IEC 61000-4-30 Ed.3, 5.2: the RMS over the
10/12-cycle interval).  For the square of a sinusoid with 115 or 127 samples
per cycle over a fractional 10-cycle window this is exact to about 1e-7
(a zero-order hold would be off by 1e-5); with few samples per cycle (< 16)
the engine uses :func:`mean_square_from_spectra` of the synchronously
resampled window instead, which is exact for band-limited signals.

Peaks and sample counts take the samples nearest to the window, sample ``k``
standing for the cell ``[k - 1/2, k + 1/2)``, so consecutive windows share
no sample.

Arrays are (channels, samples) for raw data and (windows, ...) for results.
Windows must be ascending and their cells inside ``x``.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from collector.model import c_ordered_rows


def window_cells(
    start: NDArray[np.float64], end: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """First cell and the cell holding the end of each window.

    Returns
    -------
    first, last : NDArray[np.intp]
        ``floor(s + 1/2)`` of start and end; samples ``first .. last - 1`` lie
        in the window (the ones counted for peaks, missing and clipped
        samples), ``last`` contributes its covered fraction.
    """
    return (
        np.floor(np.asarray(start) + 0.5).astype(np.intp),
        np.floor(np.asarray(end) + 0.5).astype(np.intp),
    )


def _pairs(first: NDArray[np.intp], last: NDArray[np.intp]) -> NDArray[np.intp]:
    return np.column_stack([first, last]).ravel()


def _span(
    length: int, start: NDArray[np.float64], end: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]]:
    """Window bounds as floats and the whole samples at or before them; raises when
    a window (with the sample after its end) is not inside ``length`` samples."""
    s0 = np.asarray(start, dtype=np.float64)
    s1 = np.asarray(end, dtype=np.float64)
    ka = np.floor(s0).astype(np.intp)
    kb = np.floor(s1).astype(np.intp)
    if s0.size and (ka[0] < 0 or kb[-1] + 1 >= length):
        raise ValueError(
            f"start/end: samples {ka[0]}..{kb[-1] + 1} outside x (0..{length - 1})"
        )
    return s0, s1, ka, kb


def window_mean(
    x: NDArray[np.float64], start: NDArray[np.float64], end: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Mean of ``x`` over each fractional window (trapezoidal integral).

    Parameters
    ----------
    x : NDArray[np.float64]
        Shape (C, L); e.g. squared samples [V^2] or v*i [W].
    start, end : NDArray[np.float64]
        Window boundaries [samples, relative to ``x[:, 0]``], shape (W,),
        ascending; ``x`` must hold the sample after each ``end``.

    Returns
    -------
    NDArray[np.float64]
        Shape (W, C) [unit of ``x``].
    """
    s0, s1, ka, kb = _span(x.shape[1], start, end)
    if s0.size == 0:
        return np.empty((0, x.shape[0]))
    # sum of the trapezoids between whole samples ka .. kb
    whole = np.add.reduceat(x, _pairs(ka, kb), axis=1)[:, ::2] + 0.5 * (x[:, kb] - x[:, ka])

    def partial(k: NDArray[np.intp], frac: NDArray[np.float64]) -> NDArray[np.float64]:
        # integral of the interpolant from sample k to k + frac
        return np.asarray(frac * x[:, k] + 0.5 * frac * frac * (x[:, k + 1] - x[:, k]))

    integral = whole + partial(kb, s1 - kb) - partial(ka, s0 - ka)
    return np.asarray((integral / (s1 - s0)).T)


def window_mean_product(
    x: NDArray[np.float64],
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``window_mean(x[a] * x[b], start, end)`` without building the products.

    Parameters
    ----------
    x : NDArray[np.float64]
        Shape (C, L) [V or A].
    a, b : NDArray[np.intp]
        Channels multiplied, shape (P,); ``a = b`` gives mean squares.
    start, end : NDArray[np.float64]
        As for :func:`window_mean`.

    Returns
    -------
    NDArray[np.float64]
        Shape (W, P) [unit of ``x`` squared, or W for v*i]; the values of
        :func:`window_mean` to rounding (the whole samples are summed by BLAS's
        dot product, numpy sums pairwise: the last bits may differ).
    """
    s0, s1, ka, kb = _span(x.shape[1], start, end)
    if s0.size == 0:
        return np.empty((0, a.size))
    out = np.empty((s0.size, a.size))
    rows, offset = c_ordered_rows(x)
    _mean_products(
        rows,
        offset,
        np.ascontiguousarray(a, dtype=np.intp),
        np.ascontiguousarray(b, dtype=np.intp),
        np.ascontiguousarray(s0),
        np.ascontiguousarray(s1),
        ka,
        kb,
        out,
    )
    return out


# the longest piece of a window's sum handed to BLAS at once (see _mean_products)
_DOT_CHUNK = 8192


@numba.njit(cache=True)
def _mean_products(
    x: NDArray[np.float64],
    offset: int,
    a: NDArray[np.intp],
    b: NDArray[np.intp],
    s0: NDArray[np.float64],
    s1: NDArray[np.float64],
    ka: NDArray[np.intp],
    kb: NDArray[np.intp],
    out: NDArray[np.float64],
) -> None:
    """The statements of :func:`window_mean` on ``x[a] * x[b]`` (window positions
    relative to column ``offset`` of ``x``), the whole samples between the window's
    first and last cell summed by a BLAS dot product."""
    for p in range(a.size):
        row_a = x[a[p]]
        row_b = x[b[p]]
        for w in range(s0.size):
            i, j = ka[w] + offset, kb[w] + offset
            # add.reduceat: the first element, then the rest
            at_a = row_a[i] * row_b[i]
            whole = at_a
            # in pieces short enough that BLAS never starts threads (OpenBLAS
            # does above 10000 elements): the engine stays on one core
            for k in range(i + 1, j, _DOT_CHUNK):
                stop = min(k + _DOT_CHUNK, j)
                whole += np.dot(row_a[k:stop], row_b[k:stop])
            at_b = row_a[j] * row_b[j]
            whole = whole + 0.5 * (at_b - at_a)
            fb = s1[w] - kb[w]
            fa = s0[w] - ka[w]
            part_b = fb * at_b + 0.5 * fb * fb * (row_a[j + 1] * row_b[j + 1] - at_b)
            part_a = fa * at_a + 0.5 * fa * fa * (row_a[i + 1] * row_b[i + 1] - at_a)
            out[w, p] = (whole + part_b - part_a) / (s1[w] - s0[w])


def compile_loops() -> None:
    """Compile this module's numba loop now, or load it from numba's cache: at
    start-up rather than at the first block."""
    one = np.zeros(1, dtype=np.intp)
    window_mean_product(np.zeros((1, 4)), one, one, np.ones(1), np.full(1, 2.0))
    window_peaks(np.zeros((1, 4)), np.ones(1), np.full(1, 2.0), np.ones(1))


def window_max(
    x: NDArray[np.float64], start: NDArray[np.float64], end: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Largest value of ``x`` among the samples in each window, shape (W, C)."""
    first, last = window_cells(start, end)
    if first.size == 0:
        return np.empty((0, x.shape[0]))
    return np.asarray(np.maximum.reduceat(x, _pairs(first, last), axis=1)[:, ::2].T)


def window_count(
    mask: NDArray[np.bool_], start: NDArray[np.float64], end: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Number of True samples of ``mask`` (C, L) in each window, shape (W, C)."""
    first, last = window_cells(start, end)
    if first.size == 0:
        return np.empty((0, mask.shape[0]), dtype=np.int64)
    counts = np.add.reduceat(mask, _pairs(first, last), axis=1, dtype=np.int64)[:, ::2]
    return np.asarray(counts.T)


def window_peaks(
    x: NDArray[np.float64],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    level: NDArray[np.float64],
    *,
    may_have_nan: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Largest ``|x|`` and the number of samples with ``|x| >= level``, per window.

    The same cells as :func:`window_max` and :func:`window_count` of ``|x|``
    (samples ``first .. last - 1`` of :func:`window_cells`), in one compiled
    pass instead of ``abs``, a comparison and two reductions.

    Parameters
    ----------
    x : NDArray[np.float64]
        Shape (C, L) [V or A]; a NaN in a window makes its peak NaN.  Windows
        are not empty (an empty one would give a peak of 0).
    start, end : NDArray[np.float64]
        Window boundaries, shape (W,).
    level : NDArray[np.float64]
        Per-channel threshold, shape (C,); ``inf`` counts nothing.
    may_have_nan : bool
        False when the caller knows ``x`` has no NaN (gaps already filled):
        the loop then does not look for them.

    Returns
    -------
    peak : NDArray[np.float64]
        Shape (W, C).
    count : NDArray[np.int64]
        Shape (W, C).
    """
    first, last = window_cells(start, end)
    peak = np.empty((first.size, x.shape[0]))
    count = np.zeros((first.size, x.shape[0]), dtype=np.int64)
    if first.size:
        rows, offset = c_ordered_rows(x)
        _peaks(
            rows, first + offset, last + offset, np.asarray(level, dtype=np.float64),
            may_have_nan, peak, count,
        )
    return peak, count


@numba.njit(cache=True)
def _peaks(
    x: NDArray[np.float64],
    first: NDArray[np.intp],
    last: NDArray[np.intp],
    level: NDArray[np.float64],
    may_have_nan: bool,
    peak: NDArray[np.float64],
    count: NDArray[np.int64],
) -> None:
    for c in range(x.shape[0]):
        row = x[c]
        threshold = level[c]
        for w in range(first.size):
            seg = row[first[w] : last[w]]
            m = seg.size
            # separate passes, each of which the compiler can keep in registers:
            # NaN (only when there may be one), the count (vectorised), then the
            # largest |x| in four running maxima, independent chains that the
            # processor overlaps (numba's compiler vectorises no floating-point
            # maximum over a loop, not even with fast-math, which would also drop
            # the NaN test). Twice as fast as one combined pass.
            nan = 0
            if may_have_nan:
                for k in range(m):
                    v = seg[k]
                    nan += v != v
            n = 0
            for k in range(m):
                n += abs(seg[k]) >= threshold
            t0 = t1 = t2 = t3 = 0.0
            k = 0
            while k + 4 <= m:
                a0 = abs(seg[k])
                a1 = abs(seg[k + 1])
                a2 = abs(seg[k + 2])
                a3 = abs(seg[k + 3])
                t0 = a0 if a0 > t0 else t0
                t1 = a1 if a1 > t1 else t1
                t2 = a2 if a2 > t2 else t2
                t3 = a3 if a3 > t3 else t3
                k += 4
            while k < m:
                a0 = abs(seg[k])
                t0 = a0 if a0 > t0 else t0
                k += 1
            peak[w, c] = np.nan if nan else max(max(t0, t1), max(t2, t3))
            count[w, c] = n


def mean_square_from_spectra(
    spectra: NDArray[np.complex128], n_samples: int
) -> NDArray[np.float64]:
    """Mean square of a periodic window from its ``rfft`` (Parseval).

    Parameters
    ----------
    spectra : NDArray[np.complex128]
        ``rfft`` along axis 1 of windows of ``n_samples`` (even) samples,
        shape (W, n_samples/2 + 1, C).
    n_samples : int

    Returns
    -------
    NDArray[np.float64]
        Mean square [unit^2], shape (W, C).
    """
    p = spectra.real**2 + spectra.imag**2
    total = 2.0 * p.sum(axis=1) - p[:, 0, :] - p[:, -1, :]
    return np.asarray(total / n_samples**2)


def rms(mean_square: NDArray[np.float64]) -> NDArray[np.float64]:
    """Square root, with tiny negative round-off clipped to 0."""
    return np.sqrt(np.maximum(mean_square, 0.0))
