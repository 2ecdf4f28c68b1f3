"""Urms(1/2): analytic RMS values, cadence, streaming equality, missing samples."""

from __future__ import annotations

import numpy as np
import pytest

from collector.events.half_cycle_rms import _one_cycle_rms, compile_loops, half_cycle_rms
from collector.model import NS_PER_S

from .signals import T0_NS, sine, time_axis


def _three_phase(fs: float, f: float, duration_s: float) -> np.ndarray:
    t = time_axis(fs, duration_s)
    return np.stack([
        sine(t, f, 230.0, 0.1),
        sine(t, f, 231.0, 0.1 - 2 * np.pi / 3) + sine(t, 5 * f, 12.0, 0.4),  # 5th harmonic
        sine(t, f, 229.0, 0.1 + 2 * np.pi / 3),
    ])


@pytest.mark.parametrize(("fs", "f"), [(4000.0, 50.0), (7000.0, 60.0), (6400.0, 49.8),
                                       (1000.0, 50.3)])
def test_sine_rms_matches_analytic_value_at_fractional_samples_per_cycle(
    fs: float, f: float
) -> None:
    x = _three_phase(fs, f, 1.0)
    values, _, _ = half_cycle_rms(x, T0_NS, fs, f)
    expected = np.array([230.0, np.hypot(231.0, 12.0), 229.0])
    assert values.shape[1] > 90
    # trapezoidal integration of x^2 at fractional window edges: error O((f/fs)^2)
    np.testing.assert_allclose(values, np.broadcast_to(expected[:, None], values.shape),
                               rtol=2e-4)


def test_values_come_every_half_cycle_and_the_first_after_one_cycle() -> None:
    fs, f = 7000.0, 60.0
    x = _three_phase(fs, f, 0.5)
    _, times, _ = half_cycle_rms(x, T0_NS, fs, f)
    assert times[0] - T0_NS == pytest.approx(NS_PER_S / f, abs=1)
    np.testing.assert_allclose(np.diff(times), NS_PER_S / f / 2, atol=1)
    # ends at 1, 1.5, ... 29.5 cycles: the window ending at 30 cycles (0.5 s) needs the
    # sample at 0.5 s, one past the last one
    assert times.size == 58


def test_chunked_equals_whole() -> None:
    fs, f = 7000.0, 60.0
    x = _three_phase(fs, f, 1.3)
    x[1, 3000:3010] = np.nan
    whole_v, whole_t, _ = half_cycle_rms(x, T0_NS, fs, f)
    rng = np.random.default_rng(7)
    sizes = [*rng.integers(1, 400, size=200), 1, 1, 2, 57]
    parts_v, parts_t, state, a = [], [], None, 0
    for n in sizes * 10:
        if a >= x.shape[1]:
            break
        t0 = T0_NS + round(a * NS_PER_S / fs)
        v, t, state = half_cycle_rms(x[:, a:a + n], t0, fs, f, state)
        parts_v.append(v)
        parts_t.append(t)
        a += n
    chunk_v = np.concatenate(parts_v, axis=1)
    chunk_t = np.concatenate(parts_t)
    assert chunk_v.shape == whole_v.shape
    np.testing.assert_allclose(chunk_v, whole_v, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(chunk_t, whole_t, atol=1)  # chunk t0 rounding: < 1 ns


@pytest.mark.parametrize(
    "layout", ["read-only view", "read-only blocks", "every other sample", "column slice"]
)
def test_blocks_in_any_layout_give_the_values_of_a_whole_array(layout: str) -> None:
    # the loop reads a block's rows in place when they lie in a writeable C-ordered
    # array, and a copy otherwise: the values must not depend on which
    fs, f = 6400.0, 50.0
    x = _three_phase(fs, f, 1.0)
    whole_v, whole_t, _ = half_cycle_rms(x, T0_NS, fs, f)
    if layout == "read-only view":
        held = x.copy()
        held.setflags(write=False)
    elif layout == "every other sample":
        held = np.repeat(x, 2, axis=1)[:, ::2]
    else:
        held = np.concatenate([np.zeros((3, 100)), x, np.zeros((3, 100))], axis=1)[:, 100:-100]
    compile_loops()
    compiled = len(_one_cycle_rms.signatures)
    parts_v, parts_t, state = [], [], None
    for a in range(0, x.shape[1], 1600):
        block = held[:, a:a + 1600]
        if layout == "read-only blocks":  # each a C-ordered array of its own, as replays give
            block = block.copy()
            block.setflags(write=False)
        v, t, state = half_cycle_rms(block, T0_NS + a * 156_250, fs, f, state, has_nan=False)
        parts_v.append(v)
        parts_t.append(t)
    np.testing.assert_allclose(np.concatenate(parts_v, axis=1), whole_v, rtol=1e-12)
    np.testing.assert_array_equal(np.concatenate(parts_t), whole_t)
    assert len(_one_cycle_rms.signatures) == compiled  # no layout compiles the loop again


def test_missing_samples_make_only_the_windows_that_touch_them_nan() -> None:
    fs, f = 4000.0, 50.0  # 80 samples per cycle, windows every 40 samples
    x = _three_phase(fs, f, 0.5)
    x[0, 1000] = np.nan
    values, times, _ = half_cycle_rms(x, T0_NS, fs, f)
    ends = (times - T0_NS) * fs / NS_PER_S
    touches = (ends - 80 <= 1000) & (ends >= 1000)
    assert np.isnan(values[0, touches]).all()
    # windows end every 40 samples; sample 1000 is inside the window ending at 1040 and
    # on the (trapezoid-weighted) edge of those ending at 1000 and 1080
    assert touches.sum() == 3
    np.testing.assert_allclose(values[0, ~touches], 230.0, rtol=1e-6)
    assert np.isfinite(values[1:]).all()  # other channels are untouched


def test_step_change_mean_square_is_linear_in_window_overlap() -> None:
    fs, f = 4000.0, 50.0
    t = time_axis(fs, 0.4)
    env = np.where(t < 0.2, 1.0, 0.5)
    x = sine(t, f, 100.0, 0.0, env)[None, :]
    values, times, _ = half_cycle_rms(x, T0_NS, fs, f)
    end_s = (times - T0_NS) / NS_PER_S
    overlap = np.clip((end_s - 0.2) * f, 0.0, 1.0)  # fraction of the window after the step
    expected = 100.0 * np.sqrt(1.0 - overlap * (1.0 - 0.25))
    np.testing.assert_allclose(values[0], expected, rtol=1e-6)


def test_frequency_may_change_between_calls() -> None:
    fs = 5000.0
    t = time_axis(fs, 0.4)
    x = sine(t, 50.0, 10.0)[None, :]
    _, _, state = half_cycle_rms(x[:, :1000], T0_NS, fs, 50.0)
    v, _, _ = half_cycle_rms(x[:, 1000:], T0_NS + 200_000_000, fs, 47.0, state)
    # windows of 1/47 s over a 50-Hz sine: no longer one period, but still close
    assert np.all(np.abs(v / 10.0 - 1.0) < 0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.zeros(10)}, "x: expected shape"),
        ({"fs_hz": 0.0}, "fs_hz: must be > 0"),
        ({"f_hz": 3000.0}, "f_hz: must be in"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"x": np.zeros((1, 10)), "t0_ns": 0, "fs_hz": 4000.0, "f_hz": 50.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        half_cycle_rms(**args)  # type: ignore[arg-type]


def test_state_with_other_channel_count_is_rejected() -> None:
    _, _, state = half_cycle_rms(np.zeros((2, 100)), 0, 4000.0, 50.0)
    with pytest.raises(ValueError, match="x: state has 2 channels, got 3 rows"):
        half_cycle_rms(np.zeros((3, 100)), 0, 4000.0, 50.0, state)
