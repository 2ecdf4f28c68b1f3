"""Fit routines against values worked out by hand (GUM rules, least squares)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.calibration.fit import GainPointInput, fit_gain, fit_offset, fit_phase


def test_offset_is_the_mean_with_the_standard_error_and_the_quantiser() -> None:
    rng = np.random.default_rng(1)
    x = 0.25 + rng.normal(0.0, 0.02, 10_000)
    fit = fit_offset(x, resolution=0.004)
    assert fit.offset == pytest.approx(0.25, abs=3 * 0.02 / 100)
    assert fit.noise_rms == pytest.approx(0.02, rel=0.05)
    # U = 2·sqrt(s²/n + q²/12) = 2·sqrt(4e-8 + 1.333e-6) = 2.343e-3
    assert fit.uncertainty == pytest.approx(2 * math.sqrt(0.02**2 / 10_000 + 0.004**2 / 12),
                                            rel=0.02)
    assert fit.n_samples == 10_000


def test_offset_ignores_missing_samples_and_needs_two() -> None:
    assert fit_offset([1.0, np.nan, 3.0]).offset == 2.0
    with pytest.raises(ValueError, match="samples: need at least 2 finite samples, got 1"):
        fit_offset([1.0, np.nan])


def test_single_gain_least_squares_on_relative_errors() -> None:
    # readings 2 % low at every load: one gain of 1/0.98, no residual
    pts = [GainPointInput(0.98 * r, r) for r in (1.0, 5.0, 20.0)]
    fit = fit_gain(pts, reference_accuracy_pct=0.5)
    assert fit.model == "single"
    assert fit.gain == pytest.approx(1 / 0.98)
    assert max(abs(r) for r in fit.residuals_pct) < 1e-9
    # only the reference: 2·0.5/√3
    assert fit.uncertainty_pct == pytest.approx(2 * 0.5 / math.sqrt(3))


def test_gain_with_two_points_gives_the_closed_form_and_residuals() -> None:
    # q = reading/reference = 0.99 and 1.01: g = Σq/Σq² = 2 / (0.99² + 1.01²)
    fit = fit_gain([GainPointInput(0.99, 1.0), GainPointInput(10.1, 10.0)], 0.0)
    g = 2 / (0.99**2 + 1.01**2)
    assert fit.gain == pytest.approx(g)
    assert fit.residuals_pct == pytest.approx((100 * (g * 0.99 - 1), 100 * (g * 1.01 - 1)))
    # fit contribution: std of residuals (ddof 1) / √2
    u_fit = float(np.std(fit.residuals_pct, ddof=1)) / math.sqrt(2)
    assert fit.uncertainty_pct == pytest.approx(2 * u_fit)


def test_non_linear_sensor_selects_per_point_gains() -> None:
    # a Hall sensor 3 % low at small currents, exact at large ones
    pts = [GainPointInput(0.97, 1.0), GainPointInput(4.9, 5.0), GainPointInput(20.0, 20.0)]
    fit = fit_gain(pts, reference_accuracy_pct=0.2)
    assert fit.model == "points"
    assert fit_gain(pts, 0.2, allow_points=False).model == "single"
    assert fit.contributions_pct["reference"] == pytest.approx(0.2 / math.sqrt(3))


def test_repeatability_enters_the_uncertainty() -> None:
    fit = fit_gain([GainPointInput(10.0, 10.0, reading_std=0.05, n_readings=4)], 0.0)
    # 0.05 / √4 / 10 = 0.25 %, k = 2
    assert fit.uncertainty_pct == pytest.approx(0.5)


def test_gain_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match=r"reading: must be finite and > 0, got 0\.0"):
        GainPointInput(0.0, 1.0)
    with pytest.raises(ValueError, match="points: need at least one reference load"):
        fit_gain([], 0.5)


def test_phase_is_the_mean_angle_less_the_loads() -> None:
    fit = fit_phase([2.4, 2.6, 2.5, 2.5], load_angle_deg=0.5, load_angle_uncertainty_deg=0.2)
    assert fit.phase_deg == pytest.approx(2.0)
    u_mean = float(np.std([2.4, 2.6, 2.5, 2.5], ddof=1)) / 2
    assert fit.uncertainty_deg == pytest.approx(2 * math.hypot(u_mean, 0.2 / math.sqrt(3)))
