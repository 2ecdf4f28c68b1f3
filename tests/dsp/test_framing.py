"""Window builder: exact cycle counts, fallback, re-lock, robustness, streaming."""

from __future__ import annotations

import itertools

import numpy as np

from collector.dsp.framing import FramingState, Windows, frame_windows, framing_config

FS = 6400.0
CFG = framing_config(FS, 50.0, 10, margin_samples=10.0, settle_samples=768.0)


def frame(crossings: np.ndarray, horizon: float, chunks: int = 1) -> Windows:
    state = FramingState()
    parts: list[Windows] = []
    edges = np.linspace(0, horizon, chunks + 1)
    for lo, hi in itertools.pairwise(edges):
        new = (
            crossings[(crossings > lo - 1) & (crossings <= hi - 1)]
            if lo > 0
            else crossings[crossings <= hi - 1]
        )
        w, state = frame_windows(new, hi, state, CFG)
        parts.append(w)
    return Windows(
        np.concatenate([p.start for p in parts]),
        np.concatenate([p.end for p in parts]),
        np.concatenate([p.locked for p in parts]),
    )


def test_windows_span_ten_measured_cycles() -> None:
    period = FS / 50.27
    c = 3.3 + np.arange(200) * period
    w = frame(c, c[-1] + 50)
    assert len(w) == 19
    assert w.locked.all()
    np.testing.assert_allclose(w.end - w.start, 10 * period, rtol=1e-12)
    np.testing.assert_array_equal(w.start[1:], w.end[:-1])
    assert w.start[0] == c[np.searchsorted(c, 768.0)]  # first crossing after settling


def test_chunked_equals_whole() -> None:
    period = FS / 49.9
    c = 1.7 + np.arange(300) * period
    c = np.concatenate([c[:100], c[130:]])  # a gap of 30 cycles
    whole = frame(c, c[-1] + 50)
    chunked = frame(c, c[-1] + 50, chunks=37)
    np.testing.assert_array_equal(whole.start, chunked.start)
    np.testing.assert_array_equal(whole.end, chunked.end)
    np.testing.assert_array_equal(whole.locked, chunked.locked)


def test_lost_crossings_fall_back_to_nominal_windows_then_relock() -> None:
    period = FS / 50.1
    c = 0.5 + np.arange(400) * period
    c = np.concatenate([c[:120], c[170:]])  # 50 cycles without crossings
    w = frame(c, c[-1] + 50)
    unlocked = ~w.locked
    assert unlocked.any()
    first_bad = int(np.flatnonzero(unlocked)[0])
    # the failing window starts at the last boundary and has the nominal length
    assert w.start[first_bad] == w.end[first_bad - 1]
    inner = np.flatnonzero(unlocked)[:-1]
    np.testing.assert_allclose(w.end[inner] - w.start[inner], 10 * FS / 50.0)
    # the last unlocked window ends on a crossing and the next ones are locked again
    last_bad = int(np.flatnonzero(unlocked)[-1])
    assert np.min(np.abs(c - w.end[last_bad])) == 0.0
    assert last_bad + 1 < len(w)
    assert w.locked[last_bad + 1 :].all()
    np.testing.assert_array_equal(w.start[1:], w.end[:-1])  # still contiguous


def test_spurious_crossing_is_ignored() -> None:
    period = FS / 50.0
    c = 2.0 + np.arange(150) * period
    noisy = np.sort(np.append(c, c[60] + 0.3 * period))
    a, b = frame(c, c[-1] + 50), frame(noisy, c[-1] + 50)
    np.testing.assert_array_equal(a.start, b.start)
    assert b.locked.all()


def test_windows_wait_for_their_margin() -> None:
    period = FS / 50.0
    c = 2.0 + np.arange(50) * period
    end = c[c >= 768.0][10]
    w, _ = frame_windows(c[c < end + 5], end + 5, FramingState(), CFG)
    assert len(w) == 0  # needs 10 samples after the end
    w, _ = frame_windows(c[c < end + 11], end + 11, FramingState(), CFG)
    assert len(w) == 1


def test_no_reference_gives_nominal_windows_from_the_start() -> None:
    w = frame(np.empty(0), 20000.0)
    assert not w.locked.any()
    assert w.start[0] == CFG.first_start
    np.testing.assert_allclose(np.diff(w.start), 1280.0)


def test_a_cycle_that_jumps_against_its_neighbour_breaks_the_lock() -> None:
    period = FS / 50.0
    c = 2.0 + np.arange(150) * period
    c[70:] += 0.08 * period  # one cycle 8 % long (a phase jump)
    w = frame(c, c[-1] + 50)
    hit = (w.start < c[70]) & (w.end >= c[70])
    assert hit.sum() == 1
    assert not w.locked[hit].any()
    assert w.locked[~hit].all()
