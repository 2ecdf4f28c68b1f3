"""Applying a channel's calibration: offset, amplitude-dependent gain, phase.

Order (the same in the fit, see :mod:`.fit`):

1. ``offset`` [V or A] is subtracted from every sample (after the sensor transfer);
2. the gain is multiplied in. With ``gain_points`` the gain depends on the RMS of
   the offset-corrected samples (``reading``), interpolated linearly between the
   points and held constant beyond the first and last one: a Hall sensor or a CT
   whose ratio drifts with amplitude is corrected where it was measured, and never
   extrapolated;
3. ``phase_deg`` is the angle by which the channel *leads* the true quantity at the
   nominal frequency (CT phase lead, multiplexer delay). It is removed as a time
   shift: the channel's samples represent the quantity ``phase_deg / (360 f)``
   seconds later than their timestamps, which is exactly what
   :attr:`ChannelInfo.skew_s` expresses, so the correction is added to the skew.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True, slots=True)
class ChannelCalibration:
    """The correction of one channel, resolved from inline values or a calibration file.

    Attributes
    ----------
    id : str | None
        Calibration id recorded in the quality fields (None: uncalibrated).
    offset : float
        Subtracted after the sensor transfer [V or A].
    gain : float
        Gain when there are no gain points [1].
    gain_points : tuple[tuple[float, float], ...]
        (reading [V or A RMS, after the offset], gain [1]) sorted by reading.
    phase_deg : float
        Lead of the channel over the true quantity at the nominal frequency [°].
    gain_uncertainty_pct : float | None
        Expanded (k = 2) uncertainty of the gain [%], when the fit stated one.
    phase_uncertainty_deg : float | None
        Expanded (k = 2) uncertainty of ``phase_deg`` [°], when stated.
    """

    id: str | None = None
    offset: float = 0.0
    gain: float = 1.0
    gain_points: tuple[tuple[float, float], ...] = ()
    phase_deg: float = 0.0
    gain_uncertainty_pct: float | None = None
    phase_uncertainty_deg: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain) and self.gain > 0):
            raise ValueError(f"gain: must be finite and > 0, got {self.gain}")
        if not math.isfinite(self.offset):
            raise ValueError(f"offset: must be finite, got {self.offset}")
        if not -90.0 < self.phase_deg < 90.0:
            raise ValueError(f"phase_deg: must be within ±90°, got {self.phase_deg}")
        readings = [r for r, _ in self.gain_points]
        if any(b <= a for a, b in itertools.pairwise(readings)):
            raise ValueError(f"gain_points: readings must increase, got {readings}")
        for r, g in self.gain_points:
            if not (r > 0 and g > 0 and math.isfinite(r) and math.isfinite(g)):
                raise ValueError(
                    f"gain_points: readings and gains must be finite and > 0, got ({r}, {g})"
                )

    @property
    def is_identity(self) -> bool:
        return (
            self.offset == 0.0
            and self.gain == 1.0
            and not self.gain_points
            and self.phase_deg == 0.0
        )


IDENTITY = ChannelCalibration()


def points_from_pairs(pairs: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """(reading, reference) pairs -> (reading, gain) points sorted by reading."""
    out = sorted((float(r), float(ref) / float(r)) for r, ref in pairs)
    return tuple(out)


def gain_at(reading_rms: float, cal: ChannelCalibration) -> float:
    """Gain [1] for a channel reading ``reading_rms`` [V or A] after the offset."""
    if not cal.gain_points:
        return cal.gain
    readings = np.array([r for r, _ in cal.gain_points])
    gains = np.array([g for _, g in cal.gain_points])
    if not math.isfinite(reading_rms):
        return float(gains[0])
    # np.interp holds the end values beyond the table: no extrapolation
    return float(np.interp(reading_rms, readings, gains))


def apply_offset_gain(x: ArrayLike, cal: ChannelCalibration) -> NDArray[np.float64]:
    """Calibrated samples [V or A] of one channel's samples ``x`` [V or A].

    With gain points the gain follows the RMS of the offset-corrected samples
    given here (NaN samples ignored), so pass a window long enough for a stable
    RMS (a few cycles or more).
    """
    y = np.asarray(x, dtype=np.float64) - cal.offset
    if cal.gain_points:
        valid = y[np.isfinite(y)]
        reading = float(np.sqrt(np.mean(valid * valid))) if valid.size else math.nan
        return y * gain_at(reading, cal)
    return y * cal.gain


def phase_skew_s(cal: ChannelCalibration, f_nominal_hz: float) -> float:
    """Time shift [s] equivalent to the channel's phase lead at the nominal frequency."""
    if not f_nominal_hz > 0:
        raise ValueError(f"f_nominal_hz: must be > 0, got {f_nominal_hz}")
    return cal.phase_deg / (360.0 * f_nominal_hz)
