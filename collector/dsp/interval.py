"""Everything measured over a batch of basic-interval windows, for all channels at once.

:func:`measure_channels` turns the samples of consecutive windows into
per-channel quantities: RMS over the exact window, peak, missing and clipped
sample counts, and the spectra of the synchronously resampled windows (one
compiled resampling loop and one FFT for every channel and window), from
which come the harmonic groups and the fundamental phasors.  :func:`interval_values` then
fills the values array of :mod:`collector.dsp.records`: every cell that is a
channel's quantity unchanged in one gather and scatter of precomputed flat
indices (:class:`collector.dsp.topology.ChannelCopies`), the circuit phases'
powers (IEEE 1459) and energy in one compiled loop, then circuit totals, the
polyphase system and the columns common to all rows.  A batch holds only a
few windows, so the cost is in the number of numpy calls, not their size.

Both are pure: the energy counters go in and come out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft
from numpy.typing import NDArray

from collector.dsp.gaps import fill_gaps, invalid_windows
from collector.dsp.harmonics import (
    fundamental_phasor,
    groups_from_raw_spectra,
    harmonic_groups_rms,
)
from collector.dsp.power import (
    align_spectra,
    mean_product_from_spectra,
    nonactive_power_var,
)
from collector.dsp.records import (
    COUNT,
    CYCLES,
    FREQUENCY_LOCKED,
    LOCKED_S,
    P1,
    SKEW_CORRECTION_US,
    VOLTAGE_HARMONICS,
    RecordLayout,
    derive,
)
from collector.dsp.resample import InterpolationKernel, equalize_spectra, resample_windows
from collector.dsp.rms import (
    mean_square_from_spectra,
    rms,
    window_mean,
    window_mean_product,
    window_peaks,
)
from collector.dsp.topology import CLIPPED, GROUPS, MISSING, PEAK, RMS, Topology
from collector.dsp.unbalance import unbalance_pct


@dataclass(frozen=True, slots=True)
class IntervalConfig:
    """Constants of one stream.

    Attributes
    ----------
    fs_hz : float
        Sample rate [Hz].
    cycles : int
        Cycles per basic interval (10 or 12).
    n_out : int
        Samples per resampled window (cycles x 2^k).
    harmonic_orders : int
        Highest harmonic group reported (0: none).
    kernel : InterpolationKernel
    time_domain : bool
        RMS and (unskewed) power by integrating the raw samples; otherwise
        from the resampled window (few samples per cycle).
    max_gap : int
        Longest run of missing samples bridged [samples].
    skew_s : NDArray[np.float64]
        Sampling skew of each channel [s].
    full_scale : NDArray[np.float64]
        Clipping level of each channel [V or A]; inf when unknown.
    clip_known : NDArray[np.bool_]
        Whether each channel's clipping level is known.
    """

    fs_hz: float
    cycles: int
    n_out: int
    harmonic_orders: int
    kernel: InterpolationKernel
    time_domain: bool
    max_gap: int
    skew_s: NDArray[np.float64]
    full_scale: NDArray[np.float64]
    clip_known: NDArray[np.bool_]

    @property
    def aligned(self) -> bool:
        """Channels were not sampled together: spectra get time-aligned."""
        return bool(np.any(self.skew_s != 0.0))


@dataclass(frozen=True, slots=True)
class ChannelMeasurements:
    """Per-window, per-channel results; arrays are (W, ...) then channels last.

    NaN marks a channel whose window had too many missing samples.
    """

    samples: NDArray[np.float64]  # (C, L), gaps filled
    start: NDArray[np.float64]  # (W,) in sample positions of ``samples``
    end: NDArray[np.float64]
    duration_s: NDArray[np.float64]  # (W,)
    rms: NDArray[np.float64]  # (W, C)
    peak: NDArray[np.float64]  # (W, C)
    missing: NDArray[np.int64]  # (W, C)
    clipped: NDArray[np.float64]  # (W, C), NaN when the full scale is unknown
    invalid: NDArray[np.bool_]  # (W, C)
    # (W, K, C), equalised and time-aligned; None when nothing but the groups
    # and phasors needed them (time-domain RMS and power, no skew to correct)
    spectra: NDArray[np.complex128] | None
    groups: NDArray[np.float64] | None  # (W, H, C) harmonic group RMS
    phasor: NDArray[np.complex128] | None  # (W, C) fundamental RMS phasors


def measure_channels(
    x: NDArray[np.float64],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    cfg: IntervalConfig,
    *,
    has_nan: bool | None = None,
) -> ChannelMeasurements:
    """Measure consecutive windows of every channel.

    Parameters
    ----------
    x : NDArray[np.float64]
        Samples (C, L) [V, A] covering the windows plus the kernel support on
        both sides; NaN = missing.
    start, end : NDArray[np.float64]
        Window boundaries [samples relative to ``x[:, 0]``, fractional], (W,).
    cfg : IntervalConfig
    has_nan : bool | None
        False when the caller knows ``x`` misses no sample: then it is not looked at.
    """
    kernel = cfg.kernel
    n_w = start.size
    nan = None if has_nan is False else np.isnan(x)
    if nan is not None and nan.any():
        missing, invalid = invalid_windows(nan, start, end, cfg.max_gap, reach=kernel.taps // 2)
        x = fill_gaps(x, nan)
    else:
        missing = np.zeros((n_w, x.shape[0]), dtype=np.int64)
        invalid = np.zeros((n_w, x.shape[0]), dtype=np.bool_)
    # (the gaps were filled above)
    peak, counted = window_peaks(x, start, end, cfg.full_scale, may_have_nan=False)
    clipped = np.where(cfg.clip_known[None, :], counted, np.nan)
    duration_s = (end - start) / cfg.fs_hz
    # windows and FFT in single precision (half the memory traffic; the
    # spectra keep ~7 significant digits), widened to double when equalised
    resampled = resample_windows(x.T, start, end, cfg.n_out, kernel, dtype=np.float32)
    raw = scipy.fft.rfft(resampled, axis=1)
    spectra = None
    groups = phasor = None
    if cfg.aligned or not cfg.time_domain:
        # powers and RMS come from the spectra too: equalise (and align) them all
        spectra = equalize_spectra(raw, end - start, kernel)
        if cfg.aligned:
            spectra = align_spectra(spectra, cfg.skew_s, duration_s)
        if cfg.harmonic_orders:
            groups = harmonic_groups_rms(spectra, cfg.n_out, cfg.cycles, cfg.harmonic_orders)
            phasor = fundamental_phasor(spectra, cfg.n_out, cfg.cycles)
    elif cfg.harmonic_orders:
        # only the groups and the fundamental are needed: straight from the FFT
        groups, phasor = groups_from_raw_spectra(
            raw, end - start, kernel, cfg.n_out, cfg.cycles, cfg.harmonic_orders
        )
    if groups is not None and phasor is not None and invalid.any():
        groups[np.broadcast_to(invalid[:, None, :], groups.shape)] = np.nan
        phasor[invalid] = np.nan
    if cfg.time_domain:
        every = np.arange(x.shape[0])
        mean_sq = window_mean_product(x, every, every, start, end)
    else:
        assert spectra is not None  # equalised above whenever not time_domain
        mean_sq = mean_square_from_spectra(spectra, cfg.n_out)
    value_rms = rms(mean_sq)
    if invalid.any():
        value_rms[invalid] = np.nan
        peak[invalid] = np.nan
    return ChannelMeasurements(
        samples=x,
        start=start,
        end=end,
        duration_s=duration_s,
        rms=value_rms,
        peak=peak,
        missing=missing,
        clipped=clipped,
        invalid=invalid,
        spectra=spectra,
        groups=groups,
        phasor=phasor,
    )


def _mean_products(
    m: ChannelMeasurements, a: NDArray[np.intp], b: NDArray[np.intp], cfg: IntervalConfig
) -> NDArray[np.float64]:
    """``mean(x_a * x_b)`` per window, (W, P); from the spectra when timing was corrected."""
    if cfg.time_domain and not cfg.aligned:
        return window_mean_product(m.samples, a, b, m.start, m.end)
    assert m.spectra is not None  # kept whenever not time-domain or aligned
    return mean_product_from_spectra(m.spectra[:, :, a], m.spectra[:, :, b], cfg.n_out)


def _put(
    values: NDArray[np.float64],
    layout: RecordLayout,
    rows: NDArray[np.intp],
    name: str,
    data: NDArray[np.float64] | NDArray[np.int64],
) -> None:
    if rows.size and name in layout.index:
        values[:, rows, layout.index[name]] = data


def _nan_sum(parts: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """Sum of the known parts; NaN only when none is known."""
    return np.where(np.isnan(parts).all(axis=axis), np.nan, np.nansum(parts, axis=axis))


def _copy_channel_cells(
    values: NDArray[np.float64], m: ChannelMeasurements, topo: Topology
) -> None:
    """Every cell that is a channel's quantity unchanged, in one gather and scatter."""
    copies = topo.copies
    n_w, n_ch = m.rms.shape
    n_groups = 0 if m.groups is None else m.groups.shape[1]
    quantities = np.empty((n_w, GROUPS + n_groups, n_ch + 1))
    quantities[:, :, n_ch] = np.nan
    quantities[:, RMS, :n_ch] = m.rms
    quantities[:, PEAK, :n_ch] = m.peak
    quantities[:, MISSING, :n_ch] = m.missing
    quantities[:, CLIPPED, :n_ch] = m.clipped
    src, dst = copies.src, copies.dst
    if m.groups is None:
        keep = copies.group < 0
        src, dst = src[keep], dst[keep]
    else:
        quantities[:, GROUPS:, :n_ch] = m.groups
        if n_groups < len(VOLTAGE_HARMONICS):
            keep = copies.group < n_groups
            src, dst = src[keep], dst[keep]
    values.reshape(n_w, -1)[:, dst] = quantities.reshape(n_w, -1)[:, src]


# Columns the circuit-phase loop writes, in the order of its ``cols`` argument.
_PHASE_COLUMNS = (
    "missing_samples",
    "clipped_samples",
    "harmonics_max_order",
    SKEW_CORRECTION_US,
    "power_active_w",
    "power_apparent_va",
    "power_nonactive_var",
    P1,
    "power_reactive_var",
    "energy_import_wh",
    "energy_export_wh",
)


def _circuit_phase_rows(
    values: NDArray[np.float64],
    m: ChannelMeasurements,
    topo: Topology,
    cfg: IntervalConfig,
    import_wh: NDArray[np.float64],
    export_wh: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Circuit-phase cells that are not a channel's quantity copied; the counters after."""
    rows, ci, cv = topo.cp_rows, topo.cp_i, topo.cp_v
    if not rows.size:
        return import_wh, export_wh
    has_v = cv >= 0
    products = _mean_products(m, cv[has_v], ci[has_v], cfg)
    no_phasor = np.empty((0, 0), dtype=np.complex128)
    import_wh, export_wh = import_wh.copy(), export_wh.copy()
    _fill_circuit_phases(
        values,
        topo.layout.cols(_PHASE_COLUMNS),
        rows,
        ci,
        cv,
        topo.cp_skew_us,
        float(cfg.harmonic_orders),
        # one compiled signature whatever layout the measurements came in
        np.ascontiguousarray(m.missing),
        np.ascontiguousarray(m.clipped),
        np.ascontiguousarray(m.rms),
        no_phasor if m.phasor is None else np.ascontiguousarray(m.phasor),
        np.ascontiguousarray(products),
        m.duration_s,
        import_wh,
        export_wh,
    )
    return import_wh, export_wh


@numba.njit(cache=True)
def _fill_circuit_phases(
    values: NDArray[np.float64],
    cols: NDArray[np.intp],
    rows: NDArray[np.intp],
    ci: NDArray[np.intp],
    cv: NDArray[np.intp],
    skew_us: NDArray[np.float64],
    orders: float,
    missing: NDArray[np.int64],
    clipped: NDArray[np.float64],
    rms_: NDArray[np.float64],
    phasor: NDArray[np.complex128],
    products: NDArray[np.float64],
    duration_s: NDArray[np.float64],
    import_wh: NDArray[np.float64],
    export_wh: NDArray[np.float64],
) -> None:
    """Sample counts, constants, powers (IEEE 1459) and energy of each circuit phase.

    Each value is computed with the operations, in the order, of the numpy
    statements it replaces (``nonactive_power_var``, ``fundamental_powers``,
    ``accumulate_energy_wh``, a NaN-ignoring sum of the clipped counts), so
    the results are the same to the last bit.  ``products`` holds the mean
    v*i of the phases that have a voltage, in phase order; ``phasor`` is
    empty when there are no harmonic groups.  The counters are updated in place.
    """
    n_w = values.shape[0]
    k = -1  # column of ``products``
    for j in range(rows.size):
        row, i, v = rows[j], ci[j], cv[j]
        for w in range(n_w):
            a = clipped[w, i]
            b = clipped[w, v] if v >= 0 else np.nan
            if np.isnan(a) and np.isnan(b):
                clip = np.nan
            else:
                clip = (0.0 if np.isnan(a) else a) + (0.0 if np.isnan(b) else b)
            values[w, row, cols[0]] = missing[w, i] + (missing[w, v] if v >= 0 else 0)
            values[w, row, cols[1]] = clip
            values[w, row, cols[2]] = orders
            values[w, row, cols[3]] = skew_us[j]
        if v < 0:
            continue
        k += 1
        cum_imp = 0.0
        cum_exp = 0.0
        for w in range(n_w):
            s_va = rms_[w, v] * rms_[w, i]
            p_w = np.nan if np.isnan(s_va) else products[w, k]
            n2 = s_va * s_va - p_w * p_w
            values[w, row, cols[4]] = p_w
            values[w, row, cols[5]] = s_va
            values[w, row, cols[6]] = np.sqrt(n2 if n2 >= 0.0 or np.isnan(n2) else 0.0)
            if phasor.size:
                pv, pi = phasor[w, v], phasor[w, i]
                values[w, row, cols[7]] = pv.real * pi.real + pv.imag * pi.imag
                values[w, row, cols[8]] = pv.imag * pi.real - pv.real * pi.imag
            e = (0.0 if np.isnan(p_w) else p_w) * (duration_s[w] / 3600.0)
            plus = e if e >= 0.0 else 0.0
            minus = -e if -e >= 0.0 else 0.0
            cum_imp = plus if w == 0 else cum_imp + plus
            cum_exp = minus if w == 0 else cum_exp + minus
            values[w, row, cols[9]] = import_wh[j] + cum_imp
            values[w, row, cols[10]] = export_wh[j] + cum_exp
        if n_w:
            import_wh[j] += cum_imp
            export_wh[j] += cum_exp


def compile_loops() -> None:
    """Compile this module's numba loop now, or load it from numba's cache: at
    start-up rather than at the first block."""
    one = np.zeros(1, dtype=np.intp)
    _fill_circuit_phases(
        np.zeros((1, 1, 1)), np.zeros(11, dtype=np.intp), one, one, one, np.zeros(1), 0.0,
        np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1)), np.zeros((1, 1)),
        np.zeros((1, 1), dtype=np.complex128), np.zeros((1, 1)), np.ones(1), np.zeros(1),
        np.zeros(1),
    )


_SUMMED = (
    "power_active_w",
    "power_apparent_va",
    "power_reactive_var",
    P1,
    "energy_import_wh",
    "energy_export_wh",
    "missing_samples",
)


def _total_rows(
    values: NDArray[np.float64], m: ChannelMeasurements, topo: Topology, cfg: IntervalConfig
) -> None:
    c = topo.layout.index
    totals = topo.totals
    for row, members in zip(totals.rows, totals.members, strict=True):
        phase_rows = topo.cp_rows[members]
        for name in _SUMMED:
            values[:, row, c[name]] = values[:, phase_rows, c[name]].sum(axis=1)
        values[:, row, c["clipped_samples"]] = _nan_sum(
            values[:, phase_rows, c["clipped_samples"]], axis=1
        )
        # S is the arithmetic sum of the phase S, so N follows from the sums
        values[:, row, c["power_nonactive_var"]] = nonactive_power_var(
            values[:, row, c["power_apparent_va"]], values[:, row, c["power_active_w"]]
        )
    if m.phasor is not None:
        for row, abc in totals.unbalance:
            neg, _ = unbalance_pct(*(m.phasor[:, topo.cp_i[k]] for k in abc))
            values[:, row, c["current_unbalance_neg_pct"]] = neg
    for row, summed in totals.residual:
        if cfg.time_domain and not cfg.aligned:
            total = m.samples[summed].sum(axis=0, keepdims=True)
            mean_sq = window_mean(total * total, m.start, m.end)[:, 0]
        else:
            assert m.spectra is not None  # kept whenever not time-domain or aligned
            total_spec = m.spectra[:, :, summed].sum(axis=2, keepdims=True)
            mean_sq = mean_square_from_spectra(total_spec, cfg.n_out)[:, 0]
        values[:, row, c["residual_current_a"]] = np.where(
            m.invalid[:, summed].any(axis=1), np.nan, rms(mean_sq)
        )


def _system_row(values: NDArray[np.float64], m: ChannelMeasurements, topo: Topology) -> None:
    if topo.system is None:
        return
    c = topo.layout.index
    row, abc = topo.system
    if m.phasor is not None:
        neg, zero = unbalance_pct(*(m.phasor[:, k] for k in abc))
        values[:, row, c["voltage_unbalance_neg_pct"]] = neg
        values[:, row, c["voltage_unbalance_zero_pct"]] = zero
    # element-wise over the three phases: what max, min and mean along the axis give
    # (a NaN spreads, the mean is ((a + b) + c) / 3), at a fraction of their cost
    a, b, c3 = (m.rms[:, k] for k in abc)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = 100.0 * (np.maximum(np.maximum(a, b), c3) - np.minimum(np.minimum(a, b), c3))
        spread /= (a + b + c3) / 3.0
    values[:, row, c["neutral_voltage_divergence_pct"]] = spread
    values[:, row, c["missing_samples"]] = m.missing[:, abc].sum(axis=1)


def interval_values(
    m: ChannelMeasurements,
    locked: NDArray[np.bool_],
    topo: Topology,
    cfg: IntervalConfig,
    import_wh: NDArray[np.float64],
    export_wh: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Values of every record for every window.

    Parameters
    ----------
    m : ChannelMeasurements
    locked : NDArray[np.bool_]
        Whether each window spans measured cycles, (W,).
    topo : Topology
    cfg : IntervalConfig
    import_wh, export_wh : NDArray[np.float64]
        Energy counters per circuit phase before the first window [Wh].

    Returns
    -------
    values : NDArray[np.float64]
        Shape (W, records, fields), derived columns filled.
    import_wh, export_wh : NDArray[np.float64]
        Counters after the last window.
    """
    values = topo.layout.empty(locked.size)
    _copy_channel_cells(values, m, topo)
    _put(values, topo.layout, topo.v_rows, "harmonics_max_order",
         np.full((locked.size, topo.v_rows.size), float(cfg.harmonic_orders)))
    import_wh, export_wh = _circuit_phase_rows(values, m, topo, cfg, import_wh, export_wh)
    _total_rows(values, m, topo, cfg)
    _system_row(values, m, topo)
    c = topo.layout.index
    lock = locked.astype(np.float64)
    common = {
        "samples_per_cycle": (m.end - m.start) / cfg.cycles,
        FREQUENCY_LOCKED: lock,
        CYCLES: lock * cfg.cycles,
        LOCKED_S: lock * m.duration_s,
        COUNT: np.ones(locked.size),
    }
    for name, data in common.items():
        values[:, :, c[name]] = data[:, None]
    derive(values, topo.layout, cfg.harmonic_orders)
    return values, import_wh, export_wh
