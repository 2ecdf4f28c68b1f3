"""Everything measured over a batch of basic-interval windows, for all channels at once.

:func:`measure_channels` turns the samples of consecutive windows into
per-channel quantities: RMS over the exact window, peak, missing and clipped
sample counts, and the spectra of the synchronously resampled windows (one
compiled resampling loop and one FFT for every channel and window), from
which come the harmonic groups and the fundamental phasors.  :func:`interval_values` then
fills the values array of :mod:`collector.dsp.records` row by row: voltage
channels, circuit phases (powers per IEEE 1459 and energy), circuit totals,
the polyphase system and residual-current channels.

Both are pure: the energy counters go in and come out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from collector.dsp.energy import accumulate_energy_wh
from collector.dsp.gaps import fill_gaps, invalid_windows
from collector.dsp.harmonics import fundamental_phasor, harmonic_groups_rms
from collector.dsp.power import (
    align_spectra,
    fundamental_powers,
    mean_product_from_spectra,
    nonactive_power_var,
)
from collector.dsp.records import (
    COUNT,
    CURRENT_HARMONICS,
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
from collector.dsp.rms import mean_square_from_spectra, rms, window_count, window_max, window_mean
from collector.dsp.topology import Topology
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
    spectra: NDArray[np.complex128]  # (W, K, C), equalised and time-aligned
    groups: NDArray[np.float64] | None  # (W, H, C) harmonic group RMS
    phasor: NDArray[np.complex128] | None  # (W, C) fundamental RMS phasors


def measure_channels(
    x: NDArray[np.float64],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    cfg: IntervalConfig,
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
    """
    kernel = cfg.kernel
    n_w = start.size
    nan = np.isnan(x)
    if nan.any():
        missing, invalid = invalid_windows(nan, start, end, cfg.max_gap, reach=kernel.taps // 2)
        x = fill_gaps(x, nan)
    else:
        missing = np.zeros((n_w, x.shape[0]), dtype=np.int64)
        invalid = np.zeros((n_w, x.shape[0]), dtype=np.bool_)
    magnitude = np.abs(x)
    peak = window_max(magnitude, start, end)
    clipped = np.full((n_w, x.shape[0]), np.nan)
    if cfg.clip_known.any():
        counted = window_count(magnitude >= cfg.full_scale[:, None], start, end)
        clipped = np.where(cfg.clip_known[None, :], counted, np.nan)
    duration_s = (end - start) / cfg.fs_hz
    resampled = resample_windows(x.T, start, end, cfg.n_out, kernel)
    spectra = equalize_spectra(scipy.fft.rfft(resampled, axis=1), end - start, kernel)
    if cfg.aligned:
        spectra = align_spectra(spectra, cfg.skew_s, duration_s)
    groups = phasor = None
    if cfg.harmonic_orders:
        groups = harmonic_groups_rms(spectra, cfg.n_out, cfg.cycles, cfg.harmonic_orders)
        groups[np.broadcast_to(invalid[:, None, :], groups.shape)] = np.nan
        phasor = fundamental_phasor(spectra, cfg.n_out, cfg.cycles)
        phasor[invalid] = np.nan
    if cfg.time_domain:
        mean_sq = window_mean(x * x, start, end)
    else:
        mean_sq = mean_square_from_spectra(spectra, cfg.n_out)
    value_rms = rms(mean_sq)
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
        return window_mean(m.samples[a] * m.samples[b], m.start, m.end)
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


def _put_groups(
    values: NDArray[np.float64],
    layout: RecordLayout,
    rows: NDArray[np.intp],
    first: str,
    groups: NDArray[np.float64],
) -> None:
    """Harmonic groups (W, H, R) into the contiguous columns starting at ``first``."""
    if rows.size:
        cols = layout.index[first] + np.arange(groups.shape[1])
        values[:, rows[:, None], cols[None, :]] = groups.transpose(0, 2, 1)


def _nan_sum(parts: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """Sum of the known parts; NaN only when none is known."""
    return np.where(np.isnan(parts).all(axis=axis), np.nan, np.nansum(parts, axis=axis))


def _voltage_rows(
    values: NDArray[np.float64], m: ChannelMeasurements, topo: Topology, orders: int
) -> None:
    layout, rows, ch = topo.layout, topo.v_rows, topo.v_ch
    _put(values, layout, rows, "voltage_rms_v", m.rms[:, ch])
    _put(values, layout, rows, "voltage_peak_v", m.peak[:, ch])
    _put(values, layout, rows, "missing_samples", m.missing[:, ch])
    _put(values, layout, rows, "clipped_samples", m.clipped[:, ch])
    _put(
        values,
        layout,
        rows,
        "harmonics_max_order",
        np.full((values.shape[0], rows.size), float(orders)),
    )
    if m.groups is not None:
        _put(values, layout, rows, "voltage_fundamental_v", m.groups[:, 0, ch])
        _put_groups(values, layout, rows, VOLTAGE_HARMONICS[0], m.groups[:, :, ch])


def _circuit_phase_rows(
    values: NDArray[np.float64],
    m: ChannelMeasurements,
    topo: Topology,
    cfg: IntervalConfig,
    import_wh: NDArray[np.float64],
    export_wh: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    layout, rows, ci, cv = topo.layout, topo.cp_rows, topo.cp_i, topo.cp_v
    if not rows.size:
        return import_wh, export_wh
    n_w = values.shape[0]
    has_v = cv >= 0
    cv0 = np.where(has_v, cv, 0)
    _put(values, layout, rows, "voltage_rms_v", np.where(has_v[None, :], m.rms[:, cv0], np.nan))
    _put(values, layout, rows, "current_rms_a", m.rms[:, ci])
    _put(values, layout, rows, "current_peak_a", m.peak[:, ci])
    _put(
        values,
        layout,
        rows,
        "missing_samples",
        m.missing[:, ci] + np.where(has_v[None, :], m.missing[:, cv0], 0),
    )
    clip_v = np.where(has_v[None, :], m.clipped[:, cv0], np.nan)
    _put(
        values,
        layout,
        rows,
        "clipped_samples",
        _nan_sum(np.stack([m.clipped[:, ci], clip_v]), axis=0),
    )
    _put(
        values,
        layout,
        rows,
        "harmonics_max_order",
        np.full((n_w, rows.size), float(cfg.harmonic_orders)),
    )
    _put(
        values, layout, rows, SKEW_CORRECTION_US, np.broadcast_to(topo.cp_skew_us, (n_w, rows.size))
    )
    if m.groups is not None:
        _put(values, layout, rows, "current_fundamental_a", m.groups[:, 0, ci])
        _put_groups(values, layout, rows, CURRENT_HARMONICS[0], m.groups[:, :, ci])
    if not has_v.any():
        return import_wh, export_wh
    pv, pi, pr = cv0[has_v], ci[has_v], rows[has_v]
    s_va = m.rms[:, pv] * m.rms[:, pi]
    p_w = np.where(np.isnan(s_va), np.nan, _mean_products(m, pv, pi, cfg))
    _put(values, layout, pr, "power_active_w", p_w)
    _put(values, layout, pr, "power_apparent_va", s_va)
    _put(values, layout, pr, "power_nonactive_var", nonactive_power_var(s_va, p_w))
    if m.phasor is not None:
        p1, q1 = fundamental_powers(m.phasor[:, pv], m.phasor[:, pi])
        _put(values, layout, pr, P1, p1)
        _put(values, layout, pr, "power_reactive_var", q1)
    imp, exp = accumulate_energy_wh(import_wh[has_v], export_wh[has_v], p_w, m.duration_s)
    _put(values, layout, pr, "energy_import_wh", imp)
    _put(values, layout, pr, "energy_export_wh", exp)
    import_wh, export_wh = import_wh.copy(), export_wh.copy()
    import_wh[has_v] = imp[-1]
    export_wh[has_v] = exp[-1]
    return import_wh, export_wh


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
    ph = m.rms[:, abc]
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = 100.0 * (ph.max(axis=1) - ph.min(axis=1)) / ph.mean(axis=1)
    values[:, row, c["neutral_voltage_divergence_pct"]] = spread
    values[:, row, c["missing_samples"]] = m.missing[:, abc].sum(axis=1)


def _residual_rows(values: NDArray[np.float64], m: ChannelMeasurements, topo: Topology) -> None:
    layout, rows, ch = topo.layout, topo.residual_rows, topo.residual_ch
    _put(values, layout, rows, "residual_current_a", m.rms[:, ch])
    _put(values, layout, rows, "current_peak_a", m.peak[:, ch])
    _put(values, layout, rows, "missing_samples", m.missing[:, ch])
    _put(values, layout, rows, "clipped_samples", m.clipped[:, ch])


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
    _voltage_rows(values, m, topo, cfg.harmonic_orders)
    import_wh, export_wh = _circuit_phase_rows(values, m, topo, cfg, import_wh, export_wh)
    _total_rows(values, m, topo, cfg)
    _system_row(values, m, topo)
    _residual_rows(values, m, topo)
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
