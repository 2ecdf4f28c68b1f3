"""Fitting a channel's calibration from measurements, with residuals and uncertainties.

Uncertainties follow the GUM (JCGM 100:2008): standard uncertainties of the
contributions are combined in quadrature and reported *expanded* with a coverage
factor k = 2 (about 95 %). A reference meter's accuracy specification "±a % of
reading" is taken as a rectangular distribution, standard uncertainty a/√3
(GUM §4.3.7).

Steps, in the order `gridguard calibrate` runs them:

- :func:`fit_offset` — no load: the mean of the samples is the offset;
- :func:`fit_gain` — one or more loads read on a reference meter: a single gain by
  least squares on relative errors, or per-point gains when three or more points
  show a non-linearity larger than their uncertainty;
- :func:`fit_phase` — a resistive load (displacement angle ~0): the measured angle
  of the current's fundamental relative to the voltage's is the channel's lead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

COVERAGE_K = 2.0
_SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True, slots=True)
class OffsetFit:
    """Result of the zero (no-load) step.

    Attributes
    ----------
    offset : float
        Mean of the samples [V or A]; subtract it.
    uncertainty : float
        Expanded (k = 2) uncertainty of ``offset`` [V or A].
    noise_rms : float
        Standard deviation of the samples: the channel's noise floor [V or A].
    n_samples : int
    """

    offset: float
    uncertainty: float
    noise_rms: float
    n_samples: int


def fit_offset(samples: ArrayLike, resolution: float | None = None) -> OffsetFit:
    """Offset [V or A] of a channel measured with no load.

    Parameters
    ----------
    samples : array_like
        Samples after the sensor transfer, before any calibration [V or A].
    resolution : float | None
        ADC step in the same unit [V or A]. Noise below one step does not dither
        the quantiser, so the mean can be off by up to half a step: a rectangular
        contribution ``resolution / √12`` is included.

    Notes
    -----
    The standard uncertainty of the mean is ``s / √n`` for uncorrelated noise;
    mains hum on an idle input is not uncorrelated, so measure over many whole
    cycles (the CLI uses seconds).
    """
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError(f"samples: need at least 2 finite samples, got {x.size}")
    mean = float(np.mean(x))
    s = float(np.std(x, ddof=1))
    u2 = s * s / x.size
    if resolution is not None:
        if not resolution >= 0:
            raise ValueError(f"resolution: must be >= 0, got {resolution}")
        u2 += resolution * resolution / 12.0
    return OffsetFit(mean, COVERAGE_K * math.sqrt(u2), s, int(x.size))


@dataclass(frozen=True, slots=True)
class GainPointInput:
    """One reference load.

    Attributes
    ----------
    reading : float
        Channel RMS after the offset, before any gain [V or A].
    reference : float
        What the reference meter showed [V or A RMS].
    reading_std : float
        Standard deviation of repeated channel readings at this load [V or A]
        (0 when only one reading was taken).
    n_readings : int
        How many readings ``reading`` averages.
    """

    reading: float
    reference: float
    reading_std: float = 0.0
    n_readings: int = 1

    def __post_init__(self) -> None:
        if not (self.reading > 0 and math.isfinite(self.reading)):
            raise ValueError(f"reading: must be finite and > 0, got {self.reading}")
        if not (self.reference > 0 and math.isfinite(self.reference)):
            raise ValueError(f"reference: must be finite and > 0, got {self.reference}")
        if not self.reading_std >= 0:
            raise ValueError(f"reading_std: must be >= 0, got {self.reading_std}")
        if self.n_readings < 1:
            raise ValueError(f"n_readings: must be >= 1, got {self.n_readings}")


@dataclass(frozen=True, slots=True)
class GainFit:
    """Result of the gain step.

    Attributes
    ----------
    model : "single" | "points"
        One gain for all amplitudes, or a gain per point interpolated in amplitude.
    gain : float
        Least-squares single gain [1] (also reported when the model is "points").
    points : tuple[GainPointInput, ...]
        The measured points, sorted by reading.
    residuals_pct : tuple[float, ...]
        ``(gain * reading - reference) / reference`` per point [%] for the single
        gain (what a single gain would leave).
    uncertainty_pct : float
        Expanded (k = 2) relative uncertainty of the corrected reading [%].
    contributions_pct : dict[str, float]
        Standard uncertainties [%]: reference, repeatability, fit.
    """

    model: Literal["single", "points"]
    gain: float
    points: tuple[GainPointInput, ...]
    residuals_pct: tuple[float, ...]
    uncertainty_pct: float
    contributions_pct: dict[str, float]


def fit_gain(
    points: Sequence[GainPointInput],
    reference_accuracy_pct: float,
    *,
    allow_points: bool = True,
) -> GainFit:
    """Gain of a channel from readings against a reference meter.

    Parameters
    ----------
    points : sequence of GainPointInput
        At least one load; use loads spread over the range the circuit sees.
    reference_accuracy_pct : float
        The reference meter's accuracy as ± % of reading (its datasheet figure for
        the range and frequency used) [%].
    allow_points : bool
        Let three or more points that contradict a single gain select the
        per-point model.

    Returns
    -------
    GainFit

    Notes
    -----
    The single gain minimises the relative errors: ``g = Σ q_i / Σ q_i²`` with
    ``q_i = reading_i / reference_i``. Standard uncertainties: reference
    ``a / √3``; repeatability the RMS over points of ``std_i / (√n_i · reading_i)``;
    fit (single model, two or more points) the standard deviation of the residuals
    divided by √n. A single gain is kept unless at least three points leave a
    residual larger than twice their own uncertainty.
    """
    if not points:
        raise ValueError("points: need at least one reference load, got none")
    if not (reference_accuracy_pct >= 0 and math.isfinite(reference_accuracy_pct)):
        raise ValueError(f"reference_accuracy_pct: must be >= 0, got {reference_accuracy_pct}")
    pts = tuple(sorted(points, key=lambda p: p.reading))
    q = np.array([p.reading / p.reference for p in pts])
    g = float(np.sum(q) / np.sum(q * q))
    residuals = 100.0 * (g * q - 1.0)
    u_ref = reference_accuracy_pct / _SQRT3
    rep = np.array([p.reading_std / math.sqrt(p.n_readings) / p.reading for p in pts]) * 100.0
    u_rep = float(np.sqrt(np.mean(rep * rep)))
    u_point = math.hypot(u_ref, u_rep)
    n = len(pts)
    u_fit = float(np.std(residuals, ddof=1) / math.sqrt(n)) if n >= 2 else 0.0
    model: Literal["single", "points"] = "single"
    if allow_points and n >= 3 and float(np.max(np.abs(residuals))) > COVERAGE_K * u_point:
        model = "points"
    if model == "points":
        # each point is corrected exactly; between points the linear interpolation
        # error is unknown, bounded here by half the largest step between gains
        gains = 1.0 / q
        steps = np.abs(np.diff(gains)) / gains[:-1] * 100.0
        u_fit = float(np.max(steps)) / 2.0 / _SQRT3 if steps.size else 0.0
    u_total = COVERAGE_K * math.sqrt(u_ref**2 + u_rep**2 + u_fit**2)
    return GainFit(
        model=model,
        gain=g,
        points=pts,
        residuals_pct=tuple(float(r) for r in residuals),
        uncertainty_pct=u_total,
        contributions_pct={"reference": u_ref, "repeatability": u_rep, "fit": u_fit},
    )


@dataclass(frozen=True, slots=True)
class PhaseFit:
    """Result of the phase step.

    Attributes
    ----------
    phase_deg : float
        Lead of the current channel over the true current [°] (to be removed).
    uncertainty_deg : float
        Expanded (k = 2) uncertainty [°].
    angles_deg : tuple[float, ...]
        The measured angles, one per window [°].
    """

    phase_deg: float
    uncertainty_deg: float
    angles_deg: tuple[float, ...]


def fit_phase(
    angles_deg: ArrayLike,
    *,
    load_angle_deg: float = 0.0,
    load_angle_uncertainty_deg: float = 0.2,
) -> PhaseFit:
    """Phase correction from angles measured with a (nearly) resistive load.

    Parameters
    ----------
    angles_deg : array_like
        Angle of the current's fundamental relative to the voltage's, positive when
        the current leads, one per measurement window [°].
    load_angle_deg : float
        The load's own displacement angle [°] (0 for a heater or kettle; a load
        with a known power factor cos φ can be used with φ here, leading positive).
    load_angle_uncertainty_deg : float
        Bound of how far the load may be from ``load_angle_deg`` [°] (rectangular):
        a resistive heater is within 0.2°.
    """
    a = np.asarray(angles_deg, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        raise ValueError("angles_deg: need at least one finite angle, got none")
    if not load_angle_uncertainty_deg >= 0:
        raise ValueError(
            f"load_angle_uncertainty_deg: must be >= 0, got {load_angle_uncertainty_deg}"
        )
    mean = float(np.mean(a))
    u_mean = float(np.std(a, ddof=1) / math.sqrt(a.size)) if a.size >= 2 else 0.0
    u_load = load_angle_uncertainty_deg / _SQRT3
    return PhaseFit(
        phase_deg=mean - load_angle_deg,
        uncertainty_deg=COVERAGE_K * math.hypot(u_mean, u_load),
        angles_deg=tuple(float(v) for v in a),
    )
