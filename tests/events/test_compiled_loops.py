"""The compiled (numba) loops and the shortcuts taken around them.

Each loop is checked against a plain numpy (or pure Python) statement of the same
rule, or against the frozen engine before the speed work
(``tests/events/reference_engine``); each shortcut is shown to be taken and to give
what the reference gives. The engine compiles its loops when it is built: blocks of
any layout (float32, read-only, Fortran order, a slow ADC without the low-pass
filter) must not make numba compile again at run time.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher

import collector.events.frequency as frequency_module
from collector.events.arc import (
    ArcDetector,
    ArcSettings,
    _half_cycle_stats,
    _screen,
    _variations,
)
from collector.events.engine import EventEngine, _sum
from collector.events.frames import FrameCutter
from collector.events.frequency import (
    IntervalFrequency,
    IntervalValue,
    _cycles_per_interval,
    _filter_and_scan,
    positive_zero_crossings_ns,
)
from collector.events.half_cycle_rms import _one_cycle_rms
from collector.events.sensor import SensorFaultDetector, SensorSettings, _frame_stats
from collector.events.sensor import _screen as _sensor_screen
from collector.model import NS_PER_S, Block, ChannelInfo, Phase, Quantity, SourceCapabilities

from .reference_engine import arc as ref_arc
from .reference_engine import frequency as ref_frequency
from .reference_engine.engine import EventEngine as RefEngine
from .signals import T0_NS, sine, time_axis
from .test_equivalence import assert_same_batch

FS = 6400.0
LOOPS: dict[str, Dispatcher] = {
    "rms": _one_cycle_rms,
    "arc screen": _screen,
    "arc variations": _variations,
    "arc half cycles": _half_cycle_stats,
    "sensor screen": _sensor_screen,
    "sensor frames": _frame_stats,
    "filter and crossings": _filter_and_scan,
    "intervals": _cycles_per_interval,
    "missing samples": _sum,
}


def _caps(fs: float = FS) -> SourceCapabilities:
    channels = [ChannelInfo(f"v{p}", Quantity.VOLTAGE, Phase(p), rate_hz=fs, full_scale=480.0,
                            resolution=0.015) for p in "AB"]
    channels += [ChannelInfo(f"i{p}", Quantity.CURRENT, Phase(p), circuit=f"c{p}", rate_hz=fs,
                             full_scale=60.0, resolution=0.002) for p in "AB"]
    return SourceCapabilities(channels=tuple(channels), nominal_frequency_hz=50.0)


def _arcing(t: np.ndarray, rng: np.random.Generator, on: np.ndarray) -> np.ndarray:
    """10 A whose half cycles start conducting at a random angle where ``on``:
    aperiodic and with a dwell near zero, as the signature looks for."""
    i = sine(t, 50.0, 10.0, 0.0)
    half = np.floor(t * 100.0).astype(np.int64)
    delay = rng.uniform(0.15, 0.45, half.max() + 1)[half]
    i[on & ((t * 100.0) % 1.0 < delay)] = 0.0
    return i


def _panel_signal(seconds: float, rng: np.random.Generator, fs: float = FS) -> np.ndarray:
    t = time_axis(fs, seconds)
    volts = [sine(t, 50.0, 230.0, 0.3 + k) for k in range(2)]
    arcing = _arcing(t, rng, (t > 0.6) & (t < 1.0))
    steady = sine(t, 50.0, 6.0, 0.7) + rng.normal(0, 0.01, t.size)
    x = np.stack([*volts, arcing, steady]) + rng.normal(0, 0.02, (4, t.size))
    x[3, round(1.2 * fs):round(1.6 * fs)] = 2.5  # a stuck current sensor
    return x


def _blocks(x: np.ndarray, sizes: list[int], fs: float = FS) -> list[Block]:
    out: list[Block] = []
    a = 0
    for size in itertools.cycle(sizes):
        if a >= x.shape[1]:
            return out
        out.append(Block(T0_NS + round(a * NS_PER_S / fs), fs, x[:, a:a + size]))
        a += size
    return out


def test_the_loops_are_compiled_once_for_every_kind_of_block() -> None:
    rng = np.random.default_rng(1)
    x = _panel_signal(2.0, rng)
    engine = EventEngine(_caps(), nominal_voltage_v=230.0)
    compiled = {name: len(loop.signatures) for name, loop in LOOPS.items()}
    read_only = x.copy()
    read_only.setflags(write=False)
    variants = [x.astype(np.float32), read_only, np.asfortranarray(x)]
    for k, block in enumerate(_blocks(x, [640, 6400])):
        a = round((block.t0_ns - T0_NS) * FS / NS_PER_S)
        samples = variants[k % 3][:, a:a + block.samples.shape[1]]
        engine.process(Block(block.t0_ns, FS, samples))
    slow = EventEngine(_caps(400.0), nominal_voltage_v=230.0)  # no low-pass filter, no arc
    for block in _blocks(_panel_signal(2.0, rng, 400.0), [40, 400], 400.0):
        slow.process(block)
    assert "arc" in slow.unavailable
    assert {name: len(loop.signatures) for name, loop in LOOPS.items()} == compiled
    assert all(compiled.values())


def _arc_rule(data: np.ndarray, edges: np.ndarray, period: float, s: ArcSettings) -> np.ndarray:
    """ArcDetector._may_be_arc_like stated with numpy, half cycle by half cycle."""
    hot = np.zeros(data.shape[0], dtype=bool)
    back = math.ceil(period)
    u = back - period
    for i0, i1 in itertools.pairwise(edges.tolist()):
        if (i0 - period) - s.max_shift_samples < 0:
            continue
        x = data[:, i0:i1]
        a, b = data[:, i0 - back:i1 - back], data[:, i0 - back + 1:i1 - back + 1]
        energy = (x * x).sum(axis=1)
        change = ((x - ((b - a) * u + a)) ** 2).sum(axis=1)
        loud = energy >= s.min_current_a**2 * (1.0 - 1e-9) * (i1 - i0)
        hot |= loud & ~(4.0 * change < s.variation_min**2 * (1.0 - 1e-6) * energy)
    return hot


@pytest.mark.parametrize("f_hz", [50.0, 49.93])
def test_the_arc_screen_matches_its_rule_written_with_numpy(f_hz: float) -> None:
    rng = np.random.default_rng(2)
    t = time_axis(FS, 0.3)
    on = np.ones(t.size, dtype=bool)
    rows = [
        sine(t, f_hz, 10.0),  # loud and steady: not hot
        _arcing(t, rng, on),  # loud and aperiodic: hot
        sine(t, f_hz, 0.2),  # quiet: not hot
        sine(t, f_hz, 10.0) + rng.normal(0, 1.0, t.size),  # loud, noisy: hot
        sine(t, f_hz, 10.0),  # steady but for a missing sample
    ]
    x = np.stack(rows)
    x[4, 1000] = np.nan
    detector = ArcDetector([f"i{k}" for k in range(5)], ["A"] * 5, ArcSettings(), lambda: 1)
    period = FS / f_hz
    cutter = FrameCutter(5, detector.history_samples(period))
    seen = np.zeros(5, dtype=bool)
    for a in range(0, t.size, 500):
        frames = cutter.push(x[:, a:a + 500], T0_NS, FS, 0.5 * period)
        got = detector._may_be_arc_like(frames.data, frames.edges, period)
        want = _arc_rule(frames.data, frames.edges, period, detector.settings)
        np.testing.assert_array_equal(got, want)
        seen |= got
    assert seen.tolist() == [False, True, False, True, True]


def _sensor_rule(
    data: np.ndarray, ends: np.ndarray, cycle: int, tol: np.ndarray, fs: np.ndarray
) -> np.ndarray:
    """SensorFaultDetector._may_start stated with numpy (the screen before the compiled
    loop): chunk extremes, peak, one-cycle sums at every frame end."""
    lo, hi = int(ends[0]) - cycle, int(ends[-1])
    region = data[:, lo:hi]
    size = (cycle + 1) // 2
    grid = np.arange(0, hi - lo, size)
    top = np.fmax.reduceat(region, grid, axis=1)
    bottom = np.fmin.reduceat(region, grid, axis=1)
    whole = (hi - lo) // size
    flat = top[:, :whole] - bottom[:, :whole] <= tol[:, None]
    signed = (bottom[:, :whole] > 0) | (top[:, :whole] < 0)
    hot = (flat & signed).any(axis=1)
    hot |= np.fmax(np.fmax.reduce(top, axis=1), -np.fmin.reduce(bottom, axis=1)) >= fs
    sums = np.stack([region[:, e - cycle - lo:e - lo].sum(axis=1) for e in ends.tolist()], 1)
    limit = 0.5 * cycle * 0.1 * fs  # half of 10 % of full scale, over one cycle
    hot |= ~(np.abs(sums) <= limit[:, None]).all(axis=1)
    return np.asarray(hot)


def test_the_sensor_screen_matches_its_rule_written_with_numpy() -> None:
    rng = np.random.default_rng(3)
    t = time_axis(FS, 0.4)
    channels = [ChannelInfo(f"c{k}", Quantity.CURRENT, rate_hz=FS, full_scale=60.0,
                            resolution=0.002) for k in range(7)]
    channels.append(ChannelInfo("u", Quantity.CURRENT, rate_hz=FS))  # no full scale
    rows = [sine(t, 50.0, 20.0, float(rng.uniform(0, 6))) for _ in channels]
    x = np.stack(rows) + rng.normal(0, 0.001, (len(channels), t.size))
    x[1, 900:1100] = 3.21  # stuck
    x[2, 1500] = 61.0  # clipped
    x[3] += 6.5  # a DC offset over 10 % of full scale
    x[4, 700:720] = np.nan  # missing samples
    x[5] = rng.normal(0, 0.001, t.size)  # an idle circuit
    x[6, 2000:2200] = -60.0  # clipped and stuck at once
    x[7, 300:600] = 1.0  # stuck, without a full scale
    detector = SensorFaultDetector(channels, ["A"] * len(channels), SensorSettings(), 50.0,
                                   lambda: 1)
    tol = np.array([0.004] * 7 + [0.0])
    fs = np.array([60.0] * 7 + [np.inf])
    seen = np.zeros(len(channels), dtype=int)
    for cycle in (128, 127):
        for a in range(0, t.size - 2 * cycle, 700):
            data = x[:, a:a + 900]
            ends = np.arange(cycle, data.shape[1] + 1, 64)
            got = detector._may_start(data, ends, cycle)
            np.testing.assert_array_equal(got, _sensor_rule(data, ends, cycle, tol, fs))
            seen += got
    assert (seen > 0).tolist() == [False, True, True, True, True, False, True, True]


def test_crossings_of_the_compiled_scan_equal_those_of_the_general_path() -> None:
    """The general path (the one taken with missing samples) is scipy's sosfilt and
    plain numpy; the usual one filters and scans in one compiled pass."""
    rng = np.random.default_rng(4)
    found = 0
    for trial in range(20):
        t = time_axis(FS, 1.0)
        x = sine(t, float(rng.uniform(45, 55)), 230.0) * (1.0 + 0.5 * np.sin(7 * t))
        x += rng.normal(0, float(rng.uniform(0, 60)), t.size)  # noise that chatters at zero
        x[rng.integers(0, t.size, 5)] *= 0.0
        fast = general = None
        for a in range(0, t.size, int(rng.integers(1, 900))):
            chunk = x[a:a + 900]
            t0 = T0_NS + round(a * NS_PER_S / FS)
            got, fast = positive_zero_crossings_ns(chunk, t0, FS, 50.0, 30.0, fast,
                                                   has_nan=False)
            want, general = positive_zero_crossings_ns(chunk, t0, FS, 50.0, 30.0, general,
                                                       has_nan=True)
            assert got.tolist() == want.tolist(), trial
            assert fast.armed == general.armed
            found += got.size
    assert found > 20 * 40  # every trial finds its cycles


def test_interval_frequency_counts_cycles_as_before() -> None:
    rng = np.random.default_rng(5)
    period_ns = NS_PER_S / 49.97
    k = np.cumsum(rng.choice([1] * 200 + [2, 150], size=3000))  # missing crossings, gaps
    jittered = T0_NS + 3_000_000 + np.round(k * period_ns + rng.normal(0, 1e5, k.size))
    crossings = np.sort(jittered).astype(np.int64)
    for interval_s in (1.0, 10.0):
        new = IntervalFrequency(interval_s, 50.0)
        old = ref_frequency.IntervalFrequency(interval_s, 50.0)
        got: list[tuple[int, int, float | None]] = []
        want: list[tuple[int, int, float | None]] = []
        a, now = 0, int(crossings[0])
        while a < crossings.size:
            b = a + int(rng.integers(0, 80))
            # the time the block ends: after its crossings, before the next ones
            now = max(now, int(crossings[min(b, crossings.size) - 1]) + 1)
            got += [_plain(v) for v in new.push(crossings[a:b], now)]
            want += [_plain(v) for v in old.push(crossings[a:b], now)]
            a = b
        assert got == want
        assert sum(v[2] is None for v in got) > 2  # intervals spoilt by the gaps
        assert sum(v[2] is not None for v in got) > 2


def _plain(v: IntervalValue | ref_frequency.IntervalValue) -> tuple[int, int, float | None]:
    return v.start_ns, v.end_ns, None if math.isnan(v.f_hz) else v.f_hz


def test_arc_channels_with_only_recent_arcing_are_not_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the arcing stops, the channel keeps its recent arc-like half cycles (and
    its event) for the 0.5-s window; the screen finds nothing arc-like there, so the
    channel is updated without being scored, and the events are those of before."""
    rng = np.random.default_rng(6)
    t = time_axis(FS, 2.0)
    steady = sine(t, 50.0, 10.0, 0.0)
    x = np.stack([np.where((t > 0.5) & (t < 0.9), _arcing(t, rng, t > 0), steady), steady])
    new = ArcDetector(["i1", "i2"], ["A", "B"], ArcSettings(), itertools.count(1).__next__)
    old = ref_arc.ArcDetector(["i1", "i2"], ["A", "B"], ref_arc.ArcSettings(),
                              itertools.count(1).__next__)
    scored: list[int] = []
    score = ArcDetector._score

    def spy(self: ArcDetector, data: np.ndarray, *args: object) -> object:
        scored.append(data.shape[0])
        return score(self, data, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ArcDetector, "_score", spy)
    unscored_but_busy = 0
    for block in _blocks(x, [640]):
        busy = new._states[0].recent or new._states[0].active
        calls = len(scored)
        got = new.process(block.samples, block.t0_ns, FS, 50.0)
        want = old.process(block.samples, block.t0_ns, FS, 50.0)
        assert [(e.start_ns, e.duration_s, e.details) for e in got[0]] == [
            (e.start_ns, e.duration_s, e.details) for e in want[0]
        ]
        assert [e.details for e in got[1]] == [e.details for e in want[1]]
        if busy and len(scored) == calls:
            unscored_but_busy += 1
    ended = new.close()
    assert [e.duration_s for e in ended] == [e.duration_s for e in old.close()]
    assert unscored_but_busy >= 3  # 0.5 s of 0.1-s blocks, less those near the arcing


def test_one_frame_cut_serves_the_arc_signature_and_the_sensor_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(7)
    x = _panel_signal(2.0, rng)
    pushes: list[int] = []
    push = FrameCutter.push

    def spy(self: FrameCutter, *args: object) -> object:
        pushes.append(self.n_channels)
        return push(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(FrameCutter, "push", spy)
    new = EventEngine(_caps(), nominal_voltage_v=230.0)
    ref = RefEngine(_caps(), nominal_voltage_v=230.0)
    blocks = _blocks(x, [640, 1001, 33])
    found: set[str] = set()
    for k, block in enumerate(blocks):
        got = new.process(block)
        assert_same_batch(got, ref.process(block), f"block {k}")
        found |= {str(e.type) for e in got.events}
    assert_same_batch(new.flush(), ref.flush(), "flush")
    assert {"arc_fault_suspected", "sensor_fault"} <= found
    assert pushes == [4] * len(blocks)


def test_the_frequency_filter_is_designed_once_per_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    designed: list[float] = []
    design = frequency_module._lowpass_sos

    def spy(fs_hz: float, f_nominal_hz: float) -> object:
        designed.append(fs_hz)
        return design(fs_hz, f_nominal_hz)

    monkeypatch.setattr(frequency_module, "_lowpass_sos", spy)
    x = _panel_signal(3.0, np.random.default_rng(8))
    new = EventEngine(_caps(), nominal_voltage_v=230.0)
    assert designed == [FS]  # when the engine is built
    ref = RefEngine(_caps(), nominal_voltage_v=230.0)
    for k, block in enumerate(_blocks(x, [3200])):
        if k == 5:  # a gap restarts the stream, not the design
            block = Block(block.t0_ns + NS_PER_S, FS, block.samples, contiguous=False)
        assert_same_batch(new.process(block), ref.process(block), f"block {k}")
    assert designed == [FS]


def test_infinite_samples_are_not_taken_for_missing_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The look for missing samples is a sum, NaN when one is; +inf and -inf make it
    NaN too, and then np.isnan decides."""
    looked: list[int] = []
    missing = SensorFaultDetector._missing_samples

    def spy(self: SensorFaultDetector, x: np.ndarray, *args: object) -> None:
        looked.append(x.shape[1])
        missing(self, x, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(SensorFaultDetector, "_missing_samples", spy)
    x = _panel_signal(1.0, np.random.default_rng(9))
    x[2, 3000], x[2, 3001] = np.inf, -np.inf
    assert math.isnan(_sum(x))
    engine = EventEngine(_caps(), nominal_voltage_v=230.0)
    with np.errstate(invalid="ignore", over="ignore"):
        for block in _blocks(x, [3200]):
            engine.process(block)
        assert not looked
        x[1, 5000] = np.nan
        engine.process(Block(T0_NS, FS, x[:, 4000:6000], contiguous=False))
    assert looked == [2000]
