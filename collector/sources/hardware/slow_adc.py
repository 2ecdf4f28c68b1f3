"""Metrics of one window from a slow multiplexed converter (incoherent sampling).

The window is 150 nominal cycles at 50 Hz (180 at 60 Hz): 3 s, reported as the
``150c``/``180c`` interval. Per voltage channel and per circuit (phase):

- RMS: sqrt of the mean of the squared samples, with the converter's averaging
  loss of the fitted orders undone (:mod:`.incoherent`);
- fundamental, Q1, displacement PF and active power: from harmonic fits at each
  channel's own sampling instants, so the multiplexer's V/I skew is no error;
- frequency: four-parameter sine fit of the reference voltage.

Not available from such sampling and therefore None: peak, crest factor, THD and
harmonic groups (``harmonics_max_order`` is 0). A window in which the samples'
phases do not cover the cycle (the sample rate locked to the mains) gives None for
everything but the counts, with ``sampling_locked`` true.

Quality fields beyond :mod:`collector.nomenclature` (proposed for the table):
``sampling`` ("incoherent"), ``sampling_locked``, ``accuracy_rms_pct`` and
``accuracy_power_pct_of_s`` (the capability model's promise, see
docs/hardware.md) and ``skew_correction_us`` (as the metrics engine's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from collector.metrics_engine import CircuitSpec
from collector.model import Metrics, Quantity
from collector.sources.hardware.incoherent import (
    HarmonicFit,
    active_power_w,
    averaging_gain,
    compensated_mean_square,
    estimate_frequency_hz,
    harmonic_fit,
    phase_coverage_gap,
)
from collector.sources.hardware.samples import ChannelSamples, SampleSet

SAMPLING = "sampling"
SAMPLING_LOCKED = "sampling_locked"
ACCURACY_RMS_PCT = "accuracy_rms_pct"
ACCURACY_POWER_PCT_OF_S = "accuracy_power_pct_of_s"
SKEW_CORRECTION_US = "skew_correction_us"
WINDOW_CYCLES = {50.0: 150, 60.0: 180}

# Orders whose combined averaging and jitter response is below this are not fitted:
# dividing by a small response would amplify noise more than it corrects.
MIN_ORDER_RESPONSE = 0.5
# A reference voltage weaker than this fraction of its channel's full scale has
# no usable zero crossings: the nominal frequency is used and frequency_hz is None.
_MIN_REFERENCE_FRACTION = 0.02


@dataclass(frozen=True, slots=True)
class SlowAdcSettings:
    """How windows of a slow converter are evaluated.

    Attributes
    ----------
    f_nominal_hz : float
        50 or 60 [Hz].
    conversion_s : Mapping[str, float]
        Per channel: time the converter averages one sample over [s] (1/data rate).
    timing_jitter_s : Mapping[str, float]
        Per channel: width of the uniform uncertainty of a sample's instant [s]
        (0 for single-shot reads; one conversion period in continuous mode).
    timing_bias_s : Mapping[str, float]
        Per channel: bound of a systematic error of its sample instants relative to a
        channel of another timing group [s] (how late a poll sees a conversion end;
        in continuous mode also the oscillator tolerance). It widens the power
        promise of a V/I pair from different groups by ``2π·f·(bias_v + bias_i)``.
    timing_group : Mapping[str, str]
        Per channel: channels of one group share their timing errors (one chip), so
        a V/I pair within a group has no relative bias.
    phase_uncertainty_deg : Mapping[str, float]
        Per current channel: expanded uncertainty of a phase calibration [°]; a
        calibrated pair's promise uses it instead of the timing bound (the
        calibration measured the pair's actual offset).
    harmonic_orders : int
        Orders fitted for power and the averaging compensation.
    max_phase_gap : float
        Largest tolerated gap in the samples' phase coverage [cycles].
    accuracy_rms_pct, accuracy_power_pct_of_s : float
        The promise recorded in every record's quality fields [%].
    """

    f_nominal_hz: float
    conversion_s: Mapping[str, float] = field(default_factory=dict)
    timing_jitter_s: Mapping[str, float] = field(default_factory=dict)
    timing_bias_s: Mapping[str, float] = field(default_factory=dict)
    timing_group: Mapping[str, str] = field(default_factory=dict)
    phase_uncertainty_deg: Mapping[str, float] = field(default_factory=dict)
    harmonic_orders: int = 5
    frequency_search_hz: float = 2.5
    max_phase_gap: float = 0.1
    accuracy_rms_pct: float = 0.5
    accuracy_power_pct_of_s: float = 1.0

    def __post_init__(self) -> None:
        if self.f_nominal_hz not in WINDOW_CYCLES:
            raise ValueError(f"f_nominal_hz: must be 50 or 60, got {self.f_nominal_hz}")
        if self.harmonic_orders < 1:
            raise ValueError(f"harmonic_orders: must be >= 1, got {self.harmonic_orders}")
        if not 0 < self.max_phase_gap < 1:
            raise ValueError(f"max_phase_gap: must be in (0, 1), got {self.max_phase_gap}")

    @property
    def window_s(self) -> float:
        return WINDOW_CYCLES[self.f_nominal_hz] / self.f_nominal_hz

    @property
    def interval(self) -> str:
        return f"{WINDOW_CYCLES[self.f_nominal_hz]}c"


@dataclass(frozen=True, slots=True)
class EnergyCounters:
    """Import and export energy per record key (circuit, or ``circuit:phase``) [Wh]."""

    import_wh: Mapping[str, float] = field(default_factory=dict)
    export_wh: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelEstimate:
    """One channel's evaluation in a window.

    Attributes
    ----------
    samples : ChannelSamples
    rms : float | None
        RMS with the converter's averaging undone [V or A]; None when not measurable.
    fit : HarmonicFit | None
        Harmonic fit with the averaging and jitter responses divided out.
    missing, clipped : int
        Sample counts.
    locked : bool
        The sample phases did not cover the cycle.
    """

    samples: ChannelSamples
    rms: float | None
    fit: HarmonicFit | None
    missing: int
    clipped: int
    locked: bool


def _gains(window_s: float, f_hz: float, orders: int) -> NDArray[np.float64]:
    return np.array([averaging_gain(h * f_hz, window_s) for h in range(1, orders + 1)])


def _evaluate(
    cs: ChannelSamples, origin_ns: int, f_hz: float, settings: SlowAdcSettings
) -> ChannelEstimate:
    valid = np.isfinite(cs.values)
    missing = int(np.count_nonzero(~valid))
    clipped = int(np.count_nonzero(cs.clipped))
    t = cs.t_s(origin_ns)[valid]
    x = cs.values[valid]
    if x.size < 2 * settings.harmonic_orders + 3:
        return ChannelEstimate(cs, None, None, missing, clipped, False)
    locked = phase_coverage_gap(t, f_hz) > settings.max_phase_gap
    if locked:
        return ChannelEstimate(cs, None, None, missing, clipped, True)
    ch_id = cs.info.id
    t_conv = settings.conversion_s.get(ch_id, 0.0)
    t_jit = settings.timing_jitter_s.get(ch_id, 0.0)
    orders = 1
    while orders < settings.harmonic_orders and (
        _gains(t_conv, f_hz, orders + 1)[-1] * _gains(t_jit, f_hz, orders + 1)[-1]
        >= MIN_ORDER_RESPONSE
    ):
        orders += 1
    raw = harmonic_fit(t, x, f_hz, orders)
    g_avg = _gains(t_conv, f_hz, raw.orders)
    g_jit = _gains(t_jit, f_hz, raw.orders)
    fit_true = HarmonicFit(raw.f_hz, raw.dc, raw.phasors / (g_avg * g_jit), raw.residual_rms,
                           raw.condition)
    rms = math.sqrt(compensated_mean_square(raw, g_avg, g_jit))
    return ChannelEstimate(cs, rms, fit_true, missing, clipped, False)


def _frequency(samples: SampleSet, settings: SlowAdcSettings) -> float | None:
    ref = next((c for c in samples.channels if c.info.quantity is Quantity.VOLTAGE), None)
    if ref is None:
        return None
    ok = np.isfinite(ref.values)
    x = ref.values[ok]
    if x.size < 16:
        return None
    ac = float(np.std(x))
    fs = ref.info.full_scale
    if fs is not None and ac < _MIN_REFERENCE_FRACTION * fs / math.sqrt(2.0):
        return None
    t = ref.t_s(samples.start_ns)[ok]
    try:
        f = estimate_frequency_hz(t, x, settings.f_nominal_hz, settings.frequency_search_hz)
    except ValueError:
        return None
    # at the edge of the search band the fit found no peak: not a frequency
    if abs(f - settings.f_nominal_hz) >= settings.frequency_search_hz * 0.999:
        return None
    return f


def _common(
    ch: list[ChannelEstimate],
    f_measured: float | None,
    settings: SlowAdcSettings,
    duration_s: float,
) -> dict[str, float | int | bool | str | None]:
    n = min((c.samples.n for c in ch), default=0)
    cycles = (f_measured or settings.f_nominal_hz) * duration_s
    return {
        "frequency_hz": f_measured,
        "samples_per_cycle": (n / cycles) if cycles > 0 else None,
        "missing_samples": sum(c.missing for c in ch),
        "clipped_samples": sum(c.clipped for c in ch),
        "harmonics_max_order": 0,
        SAMPLING: "incoherent",
        SAMPLING_LOCKED: any(c.locked for c in ch),
        ACCURACY_RMS_PCT: settings.accuracy_rms_pct,
        "flagged": False,
    }


def _cal_id(*ids: str | None) -> str | None:
    seen = [i for i in dict.fromkeys(ids) if i]
    return "+".join(seen) if seen else None


def estimate_channels(
    samples: SampleSet, settings: SlowAdcSettings
) -> tuple[float | None, dict[str, ChannelEstimate]]:
    """Measured frequency (None: not measurable) and every channel's estimate."""
    f_measured = _frequency(samples, settings)
    f_hz = f_measured or settings.f_nominal_hz
    return f_measured, {
        c.info.id: _evaluate(c, samples.start_ns, f_hz, settings) for c in samples.channels
    }


def window_metrics(
    samples: SampleSet,
    circuits: Sequence[CircuitSpec],
    settings: SlowAdcSettings,
    energy: EnergyCounters,
    energy_duration_s: float | None = None,
) -> tuple[list[Metrics], EnergyCounters]:
    """Metrics of one window, and the energy counters after it.

    Parameters
    ----------
    samples : SampleSet
        Calibrated samples of every channel over the window (phase corrections
        already in the instants).
    circuits : Sequence[CircuitSpec]
        Circuits to report (current channels paired with their voltages); current
        channels in none of them get a current-only record each.
    settings : SlowAdcSettings
    energy : EnergyCounters
        Counters before the window.
    energy_duration_s : float | None
        Time the window's power is integrated over [s]; default the window itself.
        A source reading windows back to back passes the time since the previous
        window ended, so the short pause spent computing is not lost from energy.

    Returns
    -------
    metrics : list[Metrics]
    energy : EnergyCounters
    """
    f_measured, evaluated = estimate_channels(samples, settings)
    f_hz = f_measured or settings.f_nominal_hz
    duration_s = samples.duration_s
    imp = dict(energy.import_wh)
    exp = dict(energy.export_wh)
    out: list[Metrics] = []
    interval = settings.interval
    for cs in samples.channels:
        if cs.info.quantity is not Quantity.VOLTAGE:
            continue
        ev = evaluated[cs.info.id]
        fields = _common([ev], f_measured, settings, duration_s)
        fields.update(
            {
                "voltage_rms_v": ev.rms,
                "voltage_fundamental_v": abs(ev.fit.fundamental) if ev.fit else None,
                "voltage_peak_v": None,
                "voltage_crest_factor": None,
                "voltage_thd_pct": None,
                "calibration_id": cs.info.calibration_id,
            }
        )
        out.append(
            Metrics(
                samples.start_ns,
                interval,
                cs.info.id,
                str(cs.info.phase) if cs.info.phase else None,
                fields,
            )
        )

    for cs in samples.channels:
        if cs.info.quantity is not Quantity.RESIDUAL_CURRENT:
            continue
        ev = evaluated[cs.info.id]
        fields = _common([ev], f_measured, settings, duration_s)
        fields.update({
            "residual_current_a": ev.rms,
            "current_peak_a": None,
            "calibration_id": cs.info.calibration_id,
        })
        out.append(Metrics(samples.start_ns, interval, cs.info.id,
                           str(cs.info.phase) if cs.info.phase else "G", fields))

    specs = list(circuits)
    covered = {c for s in specs for c in s.current_channels}
    for cs in samples.channels:
        if cs.info.quantity is Quantity.CURRENT and cs.info.id not in covered:
            specs.append(CircuitSpec(cs.info.id, (cs.info.id,), ()))
    for spec in specs:
        volts = spec.voltage_channels or (None,) * len(spec.current_channels)
        phase_records: list[dict[str, float | int | bool | str | None]] = []
        labels: list[str] = []
        for k, (i_id, v_id) in enumerate(zip(spec.current_channels, volts, strict=True)):
            ie = evaluated[i_id]
            ve = evaluated[v_id] if v_id else None
            members = [ie] + ([ve] if ve else [])
            fields = _common(members, f_measured, settings, duration_s)
            p = s = q1 = p1 = s1 = None
            if ie.fit and ve is not None and ve.fit and ie.rms is not None and ve.rms is not None:
                p = active_power_w(ve.fit, ie.fit)
                s = ve.rms * ie.rms
                vi = ve.fit.fundamental * np.conj(ie.fit.fundamental)
                p1, q1, s1 = float(vi.real), float(vi.imag), float(abs(vi))
            key = spec.id if len(spec.current_channels) == 1 else f"{spec.id}:{_label(k, ie)}"
            e_imp, e_exp = imp.get(key, 0.0), exp.get(key, 0.0)
            if p is not None:
                e = p * (duration_s if energy_duration_s is None else energy_duration_s) / 3600.0
                e_imp, e_exp = e_imp + max(e, 0.0), e_exp + max(-e, 0.0)
                imp[key], exp[key] = e_imp, e_exp
            skew_us = None
            if ve is not None and ie.samples.n and ve.samples.n:
                skew_us = (float(np.mean(ie.samples.t_ns)) - float(np.mean(ve.samples.t_ns))) / 1e3
            fields.update(
                {
                    "voltage_rms_v": ve.rms if ve else None,
                    "current_rms_a": ie.rms,
                    "current_fundamental_a": abs(ie.fit.fundamental) if ie.fit else None,
                    "current_peak_a": None,
                    "current_crest_factor": None,
                    "current_thd_pct": None,
                    "power_active_w": p,
                    "power_apparent_va": s,
                    "power_reactive_var": q1,
                    "power_nonactive_var": math.sqrt(max(s * s - p * p, 0.0))
                    if s is not None and p is not None
                    else None,
                    "power_factor": p / s if p is not None and s else None,
                    "power_factor_displacement": p1 / s1 if p1 is not None and s1 else None,
                    "energy_import_wh": e_imp if p is not None else None,
                    "energy_export_wh": e_exp if p is not None else None,
                    SKEW_CORRECTION_US: skew_us,
                    ACCURACY_POWER_PCT_OF_S: _power_promise(settings, f_hz, i_id, v_id)
                    if p is not None
                    else None,
                    "calibration_id": _cal_id(
                        ve.samples.info.calibration_id if ve else None,
                        ie.samples.info.calibration_id,
                    ),
                }
            )
            phase_records.append(fields)
            labels.append(_label(k, ie))
        n = len(phase_records)
        for k, fields in enumerate(phase_records):
            out.append(Metrics(samples.start_ns, interval, spec.id, labels[k] or None, fields))
        if n > 1:
            out.append(
                Metrics(
                    samples.start_ns,
                    interval,
                    spec.id,
                    "".join(labels) or None,
                    _total(phase_records, f_measured, settings),
                )
            )
    return out, EnergyCounters(imp, exp)


def _power_promise(settings: SlowAdcSettings, f_hz: float, i_id: str, v_id: str | None
                   ) -> float:
    """The P promise of one V/I pair [% of S]: the method's, plus the pair's timing."""
    base = settings.accuracy_power_pct_of_s
    if v_id is None:
        return base
    calibrated = settings.phase_uncertainty_deg.get(i_id)
    if calibrated is not None:
        return base + 100.0 * math.radians(calibrated)
    groups = settings.timing_group
    if i_id in groups and groups.get(i_id) == groups.get(v_id):
        return base
    bias = settings.timing_bias_s.get(i_id, 0.0) + settings.timing_bias_s.get(v_id, 0.0)
    return base + 100.0 * 2.0 * math.pi * f_hz * bias


def _label(k: int, ev: ChannelEstimate) -> str:
    phase = ev.samples.info.phase
    return str(phase) if phase is not None else "ABC"[k] if k < 3 else str(k)


def _total(
    records: list[dict[str, float | int | bool | str | None]],
    f_measured: float | None,
    settings: SlowAdcSettings,
) -> dict[str, float | int | bool | str | None]:
    def total(name: str) -> float | None:
        values = [r.get(name) for r in records]
        if any(not isinstance(v, float | int) for v in values):
            return None
        return float(sum(v for v in values if isinstance(v, float | int)))

    p, s, q = total("power_active_w"), total("power_apparent_va"), total("power_reactive_var")
    return {
        "power_active_w": p,
        "power_apparent_va": s,
        "power_reactive_var": q,
        "power_nonactive_var": math.sqrt(max(s * s - p * p, 0.0))
        if s is not None and p is not None
        else None,
        "power_factor": p / s if p is not None and s else None,
        "power_factor_displacement": None,
        "energy_import_wh": total("energy_import_wh"),
        "energy_export_wh": total("energy_export_wh"),
        "frequency_hz": f_measured,
        "missing_samples": sum(int(r.get("missing_samples") or 0) for r in records),
        "clipped_samples": sum(int(r.get("clipped_samples") or 0) for r in records),
        SAMPLING: "incoherent",
        ACCURACY_POWER_PCT_OF_S: settings.accuracy_power_pct_of_s if p is not None else None,
        "calibration_id": _cal_id(
            *(str(r["calibration_id"]) if r.get("calibration_id") else None for r in records)
        ),
        "flagged": False,
    }
