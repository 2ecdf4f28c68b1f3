"""The calibration procedure: measure, fit, write - independent of how it is driven.

`gridguard calibrate` (interactive or scripted) and the tests drive the same
steps on any :class:`~collector.sources.hardware.samples.Sampler` that delivers uncalibrated
samples (ADS1115, MCP3008):

1. :meth:`CalibrationRun.zero` — offsets: the DC part of each channel (the mean
   after the fitted AC is taken out, so a voltage channel need not be switched
   off; current channels should carry no load so that a load's own DC - a
   half-wave rectifier - is not taken for the sensor's);
2. :meth:`CalibrationRun.gain_point` — one load, read on a reference meter: the
   channel's RMS after the offset against the reference, with its repeatability
   from sub-windows; call it once per load;
3. :meth:`CalibrationRun.phase` — a resistive load: the angle of each current's
   fundamental against its voltage's, per sub-window;
4. :meth:`CalibrationRun.result` — fits (:mod:`.fit`) and the file (:mod:`.file_format`).

Readings use the source's own estimator (the slow-ADC fits undo the converter's
averaging loss), so the gain found is the gain the running source needs.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from collector.calibration.apply import ChannelCalibration
from collector.calibration.file_format import (
    FORMAT_VERSION,
    CalibrationFile,
    ChannelRecord,
    GainPointRecord,
)
from collector.calibration.fit import (
    GainFit,
    GainPointInput,
    OffsetFit,
    PhaseFit,
    fit_gain,
    fit_offset,
    fit_phase,
)
from collector.model import NS_PER_S, Quantity
from collector.sources.hardware.calibrated import calibrate_sample_set
from collector.sources.hardware.incoherent import evaluate
from collector.sources.hardware.samples import Sampler, SampleSet
from collector.sources.hardware.slow_adc import SlowAdcSettings, estimate_channels

SUB_WINDOWS = 5


def split(samples: SampleSet, parts: int) -> list[SampleSet]:
    """The window cut into ``parts`` equal sub-windows (for repeatability)."""
    span = samples.end_ns - samples.start_ns
    out = []
    for k in range(parts):
        a = samples.start_ns + span * k // parts
        b = samples.start_ns + span * (k + 1) // parts
        chans = []
        for c in samples.channels:
            sel = (c.t_ns >= a) & (c.t_ns < b)
            chans.append(replace(
                c, t_ns=c.t_ns[sel], values=c.values[sel], clipped=c.clipped[sel],
                codes=None if c.codes is None else c.codes[sel],
            ))
        out.append(SampleSet(a, b, tuple(chans)))
    return out


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """Everything the run found for one channel."""

    channel_id: str
    quantity: Quantity
    offset: OffsetFit | None
    gain: GainFit | None
    phase: PhaseFit | None

    def calibration(self, calibration_id: str | None = None) -> ChannelCalibration:
        from collector.calibration.apply import points_from_pairs

        points: tuple[tuple[float, float], ...] = ()
        if self.gain is not None and self.gain.model == "points":
            points = points_from_pairs([(p.reading, p.reference) for p in self.gain.points])
        return ChannelCalibration(
            id=calibration_id,
            offset=self.offset.offset if self.offset else 0.0,
            gain=self.gain.gain if self.gain else 1.0,
            gain_points=points,
            phase_deg=self.phase.phase_deg if self.phase else 0.0,
            gain_uncertainty_pct=self.gain.uncertainty_pct if self.gain else None,
            phase_uncertainty_deg=self.phase.uncertainty_deg if self.phase else None,
        )


@dataclass
class CalibrationRun:
    """One calibration session over some channels of a source.

    Parameters
    ----------
    source : Sampler
        Opened without calibration (``calibrated=False``).
    settings : SlowAdcSettings
        The estimator settings of the source (conversion times for the ADS1115;
        none for a sample-and-hold converter).
    channels : Sequence[str]
        Channel ids to calibrate.
    partners : Mapping[str, str]
        Current channel -> the voltage channel it pairs with (for the phase step).
    resolutions : Mapping[str, float]
        ADC step per channel in physical units [V or A].
    """

    source: Sampler
    settings: SlowAdcSettings
    channels: Sequence[str]
    partners: Mapping[str, str] = field(default_factory=dict)
    resolutions: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 3.0
    settle_s: float = 0.0
    offsets: dict[str, OffsetFit] = field(default_factory=dict)
    points: dict[str, list[GainPointInput]] = field(default_factory=dict)
    angles: dict[str, list[float]] = field(default_factory=dict)

    def _acquire(self) -> SampleSet:
        if self.settle_s > 0:
            self.source.clock.sleep(self.settle_s)
        raw = self.source.acquire(self.seconds, calibrated=False)
        return raw

    def _offset_only(self) -> dict[str, ChannelCalibration]:
        return {c: ChannelCalibration(offset=o.offset) for c, o in self.offsets.items()}

    def zero(self) -> dict[str, OffsetFit]:
        """Measure every channel's offset; returns the fits."""
        samples = self._acquire()
        _, est = estimate_channels(samples, self.settings)
        for cid in self.channels:
            cs = samples.channel(cid)
            e = est[cid]
            values = cs.values
            if e.fit is not None:
                # take the fitted AC out (as seen through the converter): what remains is
                # the DC and the noise, so a live voltage channel can be zeroed too
                t = cs.t_s(samples.start_ns)
                ok = np.isfinite(values)
                ac = np.zeros_like(values)
                g = _responses(self.settings, cid, e.fit.f_hz, e.fit.orders)
                seen = replace(e.fit, phasors=e.fit.phasors * g)
                ac[ok] = evaluate(seen, t[ok], include_dc=False)
                values = values - ac
            self.offsets[cid] = fit_offset(values, self.resolutions.get(cid))
        return dict(self.offsets)

    def gain_point(self, references: Mapping[str, float]) -> dict[str, GainPointInput]:
        """Measure one load; ``references`` are the reference meter's RMS per channel."""
        unknown = set(references) - set(self.channels)
        if unknown:
            raise ValueError(
                f"references: channels {sorted(unknown)} are not being calibrated "
                f"({', '.join(self.channels)})"
            )
        samples = calibrate_sample_set(self._acquire(), self._offset_only(),
                                       self.settings.f_nominal_hz)
        _, whole = estimate_channels(samples, self.settings)
        parts = [estimate_channels(p, self.settings)[1] for p in split(samples, SUB_WINDOWS)]
        out = {}
        for cid, ref in references.items():
            reading = whole[cid].rms
            if reading is None or not reading > 0:
                raise ValueError(f"{cid}: no usable reading in this window (no signal?)")
            subs = [r for p in parts if (r := p[cid].rms) is not None]
            std = float(np.std(subs, ddof=1)) if len(subs) >= 2 else 0.0
            # sub-windows are a 1/SUB_WINDOWS sample each; the whole window averages them
            point = GainPointInput(reading, ref, std, max(len(subs), 1))
            self.points.setdefault(cid, []).append(point)
            out[cid] = point
        return out

    def phase(self) -> dict[str, list[float]]:
        """Angles [°] of each current against its voltage, with a resistive load."""
        samples = calibrate_sample_set(self._acquire(), self._offset_only(),
                                       self.settings.f_nominal_hz)
        for sub in split(samples, SUB_WINDOWS):
            _, est = estimate_channels(sub, self.settings)
            for cid in self.channels:
                vid = self.partners.get(cid)
                if vid is None:
                    continue
                i_fit, v_fit = est[cid].fit, est[vid].fit
                if i_fit is None or v_fit is None:
                    continue
                angle = math.degrees(cmath.phase(i_fit.fundamental * v_fit.fundamental.conjugate()))
                self.angles.setdefault(cid, []).append(angle)
        return {c: list(a) for c, a in self.angles.items()}

    def result(
        self,
        quantities: Mapping[str, Quantity],
        *,
        reference_accuracy_pct: float,
        load_angle_uncertainty_deg: float = 0.2,
    ) -> dict[str, ChannelResult]:
        out = {}
        for cid in self.channels:
            pts = self.points.get(cid)
            angles = self.angles.get(cid)
            out[cid] = ChannelResult(
                channel_id=cid,
                quantity=quantities[cid],
                offset=self.offsets.get(cid),
                gain=fit_gain(pts, reference_accuracy_pct) if pts else None,
                phase=fit_phase(angles, load_angle_uncertainty_deg=load_angle_uncertainty_deg)
                if angles else None,
            )
        return out


def _responses(settings: SlowAdcSettings, cid: str, f_hz: float, orders: int
               ) -> np.ndarray:
    from collector.sources.hardware.incoherent import averaging_gain

    t_conv = settings.conversion_s.get(cid, 0.0)
    t_jit = settings.timing_jitter_s.get(cid, 0.0)
    return np.array([averaging_gain(h * f_hz, t_conv) * averaging_gain(h * f_hz, t_jit)
                     for h in range(1, orders + 1)])


def calibration_file(
    results: Mapping[str, ChannelResult],
    *,
    calibration_id: str,
    nominal_frequency_hz: float,
    created: datetime | None = None,
    reference_instrument: str | None = None,
    notes: str | None = None,
    keep: CalibrationFile | None = None,
) -> CalibrationFile:
    """The file for ``results`` (channels of ``keep`` not calibrated now are kept)."""
    records: dict[str, ChannelRecord] = dict(keep.channels) if keep is not None else {}
    for cid, r in results.items():
        gain = r.gain
        records[cid] = ChannelRecord(
            quantity=r.quantity.value,
            unit="V" if r.quantity is Quantity.VOLTAGE else "A",
            offset=r.offset.offset if r.offset else 0.0,
            offset_uncertainty=r.offset.uncertainty if r.offset else None,
            noise_rms=r.offset.noise_rms if r.offset else None,
            gain_model=gain.model if gain else "single",
            gain=gain.gain if gain else 1.0,
            gain_points=tuple(
                GainPointRecord(reading=p.reading, reference=p.reference, residual_pct=res)
                for p, res in zip(gain.points, gain.residuals_pct, strict=True)
            ) if gain else (),
            gain_uncertainty_pct=gain.uncertainty_pct if gain else None,
            phase_deg=r.phase.phase_deg if r.phase else 0.0,
            phase_uncertainty_deg=r.phase.uncertainty_deg if r.phase else None,
        )
    when = created or datetime.now(UTC)
    return CalibrationFile(
        gridguard_calibration=FORMAT_VERSION,
        id=calibration_id,
        created_utc=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        nominal_frequency_hz=nominal_frequency_hz,
        reference_instrument=reference_instrument,
        notes=notes,
        channels=records,
    )


def default_calibration_id(now_ns: int) -> str:
    """``cal-YYYYMMDDTHHMMSSZ`` from a wall-clock time [ns since epoch]."""
    return datetime.fromtimestamp(now_ns / NS_PER_S, UTC).strftime("cal-%Y%m%dT%H%M%SZ")
