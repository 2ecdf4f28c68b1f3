"""RMS, power and frequency from slow, irregularly timed samples (incoherent sampling).

A multiplexed ADS1115 gives each channel a few hundred samples per second at
instants set by the I2C bus, not by the mains: 4 or 5 samples per 50 Hz cycle,
never synchronised. Such samples cannot show a waveform, but over many cycles
their phases cover the cycle evenly, so:

- the mean of x² over the window converges to the true mean square whatever the
  harmonics (aliasing moves energy in frequency, it does not remove it);
- a least-squares fit of ``dc + Σ_h √2·Re(X_h·e^{j2πhft})`` at each sample's own
  instant gives the fundamental (and low harmonics) as phasors; the V/I skew of the
  multiplexer is then no error at all, because each channel is fitted at the
  instants it was really sampled (IEEE Std 1057-2017 §4.1 sine fitting);
- the active power is ``V0·I0 + Σ_h Re(V_h·conj(I_h))`` from the two fits.

A delta-sigma converter also averages its input over the conversion time; the
fundamental comes out scaled by ``sinc(f·T)`` (0.55 % low at 50 Hz and 860 SPS),
which :func:`averaging_gain` gives and the callers divide out.

All functions are pure; times are seconds relative to a window origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

SQRT2 = math.sqrt(2.0)
# Largest condition number of the (column-normalised) harmonic design matrix that
# still gives phasors to ~1e-4 with 16-bit data; above it fewer orders are fitted.
MAX_CONDITION = 1e3


@dataclass(frozen=True, slots=True)
class HarmonicFit:
    """Least-squares harmonic model of one channel over a window.

    Attributes
    ----------
    f_hz : float
        Fundamental frequency the model uses [Hz].
    dc : float
        Mean value [V or A].
    phasors : NDArray[np.complex128]
        RMS phasors of orders 1..len(phasors) [V or A], angle relative to t = 0.
    residual_rms : float
        RMS of what the model does not explain: noise and higher harmonics [V or A].
    condition : float
        Condition number of the normalised design matrix (1 = orthogonal).
    """

    f_hz: float
    dc: float
    phasors: NDArray[np.complex128]
    residual_rms: float
    condition: float

    @property
    def orders(self) -> int:
        return int(self.phasors.shape[0])

    @property
    def fundamental(self) -> complex:
        return complex(self.phasors[0]) if self.orders else complex("nan")


def _design(t_s: NDArray[np.float64], f_hz: float, orders: int) -> NDArray[np.float64]:
    theta = (2.0 * math.pi * f_hz) * t_s
    h = np.arange(1, orders + 1)
    arg = theta[:, None] * h[None, :]
    out = np.empty((t_s.size, 1 + 2 * orders))
    out[:, 0] = 1.0
    out[:, 1::2] = np.cos(arg)
    out[:, 2::2] = np.sin(arg)
    return out


def harmonic_fit(t_s: ArrayLike, x: ArrayLike, f_hz: float, orders: int = 1) -> HarmonicFit:
    """Fit dc and harmonics 1..``orders`` at frequency ``f_hz`` to samples at ``t_s``.

    Parameters
    ----------
    t_s : array_like
        Sampling instants [s] relative to the window origin.
    x : array_like
        Samples [V or A], same length; NaN samples are ignored.
    f_hz : float
        Fundamental frequency [Hz].
    orders : int
        Highest order wanted; fewer are fitted when the sampling instants cannot
        separate them (condition number above ``MAX_CONDITION``), at least 1.

    Returns
    -------
    HarmonicFit
    """
    t = np.asarray(t_s, dtype=np.float64)
    y = np.asarray(x, dtype=np.float64)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError(f"t_s, x: need two 1-D arrays of one length, got {t.shape}, {y.shape}")
    if not (f_hz > 0 and math.isfinite(f_hz)):
        raise ValueError(f"f_hz: must be finite and > 0, got {f_hz}")
    if orders < 1:
        raise ValueError(f"orders: must be >= 1, got {orders}")
    ok = np.isfinite(y) & np.isfinite(t)
    t, y = t[ok], y[ok]
    h = min(orders, max(1, (t.size - 2) // 2))
    if t.size < 3:
        raise ValueError(f"x: need at least 3 finite samples to fit, got {t.size}")
    while True:
        a = _design(t, f_hz, h)
        norms = np.linalg.norm(a, axis=0)
        sv = np.linalg.svd(a / norms, compute_uv=False)
        cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf
        if cond <= MAX_CONDITION or h == 1:
            break
        h -= 1
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    phasors = (coef[1::2] - 1j * coef[2::2]) / SQRT2
    return HarmonicFit(
        f_hz=float(f_hz),
        dc=float(coef[0]),
        phasors=np.asarray(phasors, dtype=np.complex128),
        residual_rms=float(np.sqrt(np.mean(resid * resid))),
        condition=cond,
    )


def evaluate(fit: HarmonicFit, t_s: ArrayLike, *, include_dc: bool = True
             ) -> NDArray[np.float64]:
    """The fitted model at instants ``t_s`` [s] [V or A]."""
    t = np.asarray(t_s, dtype=np.float64)
    a = _design(t, fit.f_hz, fit.orders)
    coef = np.empty(1 + 2 * fit.orders)
    coef[0] = fit.dc if include_dc else 0.0
    coef[1::2] = SQRT2 * fit.phasors.real
    coef[2::2] = -SQRT2 * fit.phasors.imag
    out: NDArray[np.float64] = a @ coef
    return out


def _fundamental_residual(t: NDArray[np.float64], y: NDArray[np.float64], f_hz: float) -> float:
    a = _design(t, f_hz, 1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ coef
    return float(r @ r)


def estimate_frequency_hz(
    t_s: ArrayLike, x: ArrayLike, f_nominal_hz: float, search_hz: float = 2.5
) -> float:
    """Fundamental frequency [Hz] of irregularly sampled ``x`` near ``f_nominal_hz``.

    A grid search of the three-parameter sine fit over ``f_nominal_hz ± search_hz``
    (step a quarter of the window's resolution 1/T) followed by a bounded scalar
    minimisation of the fit residual (the four-parameter fit of IEEE Std 1057).

    Raises
    ------
    ValueError
        When the window is too short or has too few samples to tell frequencies
        ``search_hz`` apart.
    """
    t = np.asarray(t_s, dtype=np.float64)
    y = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    if t.size < 8:
        raise ValueError(f"x: need at least 8 finite samples, got {t.size}")
    span = float(t.max() - t.min())
    if not span > 0:
        raise ValueError("t_s: samples span no time")
    step = 0.25 / span
    grid = np.arange(f_nominal_hz - search_hz, f_nominal_hz + search_hz + step / 2, step)
    if grid.size < 3:
        raise ValueError(f"search_hz: {search_hz} Hz is narrower than the window resolution")
    y0 = y - np.mean(y)
    costs = np.array([_fundamental_residual(t, y0, float(f)) for f in grid])
    k = int(np.argmin(costs))
    lo = float(grid[max(k - 1, 0)])
    hi = float(grid[min(k + 1, grid.size - 1)])
    res = minimize_scalar(
        lambda f: _fundamental_residual(t, y0, float(f)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(res.x)


def averaging_gain(f_hz: float, window_s: float) -> float:
    """Amplitude response [1] of a uniform average over ``window_s`` at ``f_hz``.

    ``sinc(f·T) = sin(πfT)/(πfT)``: the response of a converter that integrates its
    input over the conversion time T (single-cycle-settling delta-sigma model).
    """
    return float(np.sinc(f_hz * window_s))


def compensated_mean_square(
    fit: HarmonicFit,
    averaging_gains: NDArray[np.float64],
    jitter_gains: NDArray[np.float64] | None = None,
) -> float:
    """Mean square [V² or A²] of the input from a fit of averaged, jittered samples.

    The fitted orders are counted from their phasors (the least-squares fit weighs
    unevenly covered phases correctly, where a plain mean of x² would not), the
    rest from the fit residual:

    ``ms = dc² + Σ_h A_h / (a_h² j_h²) + r² - Σ_h A_h (1/j_h² - 1)``

    with ``A_h = |X_h|²`` the fitted (observed) phasors, ``a_h`` the converter's
    averaging response, ``j_h`` the response to timing jitter (1 without) and ``r``
    the residual RMS. Timing jitter moves part of each order from the phasor into
    the residual; the last term takes it back out so nothing is counted twice.
    """
    a = np.asarray(averaging_gains, dtype=np.float64)[: fit.orders]
    j = (
        np.ones_like(a)
        if jitter_gains is None
        else np.asarray(jitter_gains, dtype=np.float64)[: fit.orders]
    )
    p2 = np.abs(fit.phasors) ** 2
    ms = (
        fit.dc * fit.dc
        + float(np.sum(p2 / (a * a * j * j)))
        + fit.residual_rms**2
        - float(np.sum(p2 * (1.0 / (j * j) - 1.0)))
    )
    return max(ms, 0.0)


def active_power_w(v: HarmonicFit, i: HarmonicFit) -> float:
    """Active power [W] from two fits over the same window and frequency.

    ``P = V0·I0 + Σ_h Re(V_h·conj(I_h))`` over the orders both fits resolved.
    """
    n = min(v.orders, i.orders)
    return float(v.dc * i.dc + np.sum(np.real(v.phasors[:n] * np.conj(i.phasors[:n]))))


def phase_coverage_gap(t_s: ArrayLike, f_hz: float) -> float:
    """Largest gap between the samples' phases within the cycle [cycles, 0..1].

    Small (≪ 1/(2·orders)) when the samples are incoherent with the mains; large
    when the sample rate locks to a sub-multiple of the mains frequency, the one
    case in which neither the mean square nor the fit can be trusted.
    """
    t = np.asarray(t_s, dtype=np.float64)
    t = t[np.isfinite(t)]
    if t.size == 0:
        return 1.0
    ph = np.sort(np.mod(t * f_hz, 1.0))
    gaps = np.diff(np.concatenate([ph, [ph[0] + 1.0]]))
    return float(np.max(gaps))
