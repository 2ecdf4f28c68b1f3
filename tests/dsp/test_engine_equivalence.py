"""The optimised metrics engine gives the same records as the frozen reference.

``tests/dsp/reference_engine`` is a verbatim copy (imports aside) of
``collector/metrics_engine.py`` and ``collector/dsp`` taken before the
performance work; its outputs were validated by the analytic and standards
tests of that time.  Here both engines consume the same long 15-channel
simulated panel (dips, a frequency excursion, harmonic pollution, an
overload, a clipping sensor, missing samples, a gap) cut into random block
sizes, and every field of every record must agree exactly, floats to 1e-12
relative, except what comes from the spectra: the engine resamples the windows
and takes their FFT in single precision (the reference in double), so harmonic
groups, fundamentals and reactive power agree to 1e-6 of the record's RMS or
apparent power, and the ratios built from them (THD, displacement power
factor, unbalance) to 1e-3 percentage points / 1e-5 (about ten times the
differences seen, ~1e-7 of full scale, and far below any reported resolution).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping

import numpy as np
import pytest

from collector.metrics_engine import MetricsEngine, circuits_from_capabilities
from collector.model import NS_PER_S, Block, Metrics, Phase, SourceCapabilities
from collector.sources.simulated import SimulatedSource
from collector.sources.simulated.disturbances import (
    DisturbanceType,
    FrequencyExcursion,
    HarmonicPollution,
    Overload,
    SensorFault,
    SensorFaultKind,
    VoltageChange,
)
from tests.benchmarks.bench_simulated import fifteen_channel_panel
from tests.dsp.reference_engine.metrics_engine import CircuitSpec as RefCircuitSpec
from tests.dsp.reference_engine.metrics_engine import MetricsEngine as RefEngine

SECONDS = 24.0
REL = 1e-12


def _signal() -> tuple[SourceCapabilities, float, int, np.ndarray]:
    panel = fifteen_channel_panel()
    circuit = panel.circuits[0].id
    current = next(
        c.id
        for c in SimulatedSource(panel, duration_s=0.1).capabilities.channels
        if c.circuit == circuit
    )
    disturbances = (
        VoltageChange(
            DisturbanceType.VOLTAGE_DIP,
            at_s=3.0,
            duration_s=0.35,
            magnitude_pct=60.0,
            phases=(Phase.A,),
        ),
        VoltageChange(DisturbanceType.VOLTAGE_SWELL, at_s=7.2, duration_s=0.5, magnitude_pct=115.0),
        FrequencyExcursion(at_s=9.0, duration_s=4.0, frequency_hz=50.6, rocof_hz_per_s=1.0),
        HarmonicPollution(at_s=4.0, duration_s=6.0, order=5, pct=6.0),
        Overload(at_s=12.0, duration_s=3.0, circuit=circuit, factor=2.5),
        SensorFault(at_s=15.0, duration_s=2.0, channel=current, kind=SensorFaultKind.CLIPPING),
    )
    src = SimulatedSource(panel, disturbances=disturbances, seed=7, duration_s=SECONDS)
    blocks = list(src.blocks())
    x = np.concatenate([b.samples for b in blocks], axis=1)
    # a few missing samples: bridged (short) and invalidating (long) runs
    x[3, 40_000:40_003] = np.nan
    x[5, 70_000:70_400] = np.nan
    return src.capabilities, blocks[0].fs_hz, blocks[0].t0_ns, x


def _blocks(x: np.ndarray, fs_hz: float, t0_ns: int, seed: int) -> Iterator[Block]:
    """Random block sizes (1 sample .. 1.5 s) and one gap of 0.3 s after 60 %."""
    rng = np.random.default_rng(seed)
    gap_at = int(0.6 * x.shape[1])
    k = 0
    after_gap = False
    while k < x.shape[1]:
        n = int(rng.choice([1, 17, 333, 1280, 3200, 6400, 9600]) * rng.uniform(0.5, 1.5)) + 1
        stop = min(k + n, x.shape[1])
        if k < gap_at <= stop and not after_gap:
            stop = gap_at
        yield Block(
            t0_ns + round(k * NS_PER_S / fs_hz),
            fs_hz,
            x[:, k:stop],
            contiguous=not (k == gap_at and after_gap),
        )
        k = stop
        if k == gap_at and not after_gap:
            after_gap = True
            k += round(0.3 * fs_hz)


# single-precision spectra: tolerance relative to the record's scale, see the docstring
SINGLE = 1e-6
_SPECTRAL_RATIOS = {
    "voltage_thd_pct": 1e-3,
    "current_thd_pct": 1e-3,
    "voltage_unbalance_neg_pct": 1e-3,
    "voltage_unbalance_zero_pct": 1e-3,
    "current_unbalance_neg_pct": 1e-3,
    "power_factor_displacement": 1e-5,
}


def _spectral_tolerance(name: str, fields: Mapping[str, object]) -> float | None:
    """Absolute tolerance for a field computed from the spectra, None for the others."""
    if name in _SPECTRAL_RATIOS:
        return _SPECTRAL_RATIOS[name]
    scale_of = {
        "_v": "voltage_rms_v", "_a": "current_rms_a", "power_reactive_var": "power_apparent_va"
    }
    if name == "power_reactive_var":
        scale = fields.get("power_apparent_va")
    elif "_fundamental_" in name or re.fullmatch(r"(voltage|current)_h\d+_[va]", name):
        scale = fields.get(scale_of[name[-2:]])
    else:
        return None
    return SINGLE * float(scale) if isinstance(scale, float) else 0.0


def _assert_same(got: list[Metrics], want: list[Metrics]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        head = (w.time_ns, w.interval, w.channel, w.phase)
        assert (g.time_ns, g.interval, g.channel, g.phase, g.flagged) == (*head, w.flagged)
        assert list(g.fields) == list(w.fields), head
        for name, ref in w.fields.items():
            val = g.fields[name]
            assert type(val) is type(ref), (head, name, val, ref)
            if isinstance(ref, float) and isinstance(val, float):
                tol = _spectral_tolerance(name, w.fields)
                if tol is None:
                    assert math.isclose(val, ref, rel_tol=REL, abs_tol=0.0), (head, name, val, ref)
                else:
                    assert abs(val - ref) <= tol, (head, name, val, ref, tol)
            else:
                assert val == ref, (head, name, val, ref)


@pytest.mark.parametrize(("seed", "batch_s"), [(1, 0.0), (2, 1.0), (3, 0.37)])
def test_matches_reference_engine(seed: int, batch_s: float) -> None:
    caps, fs_hz, t0_ns, x = _signal()
    circuits = circuits_from_capabilities(caps)
    ref_circuits = [RefCircuitSpec(c.id, c.current_channels, c.voltage_channels) for c in circuits]
    new = MetricsEngine(caps, circuits, batch_s=batch_s)
    ref = RefEngine(caps, ref_circuits, batch_s=batch_s)
    n_records = n_flagged = n_none = 0
    intervals: set[str] = set()
    for i, block in enumerate(_blocks(x, fs_hz, t0_ns, seed)):
        # an event detector's report now and then, to exercise the flags
        disturbed = [(block.t0_ns, block.t0_ns + NS_PER_S // 10)] if i % 97 == 5 else []
        got = new.process(block, disturbed)
        want = ref.process(block, disturbed)
        _assert_same(got, want)
        np.testing.assert_array_equal(new.crossings_ns, ref.crossings_ns)
        assert new.crossings_horizon_ns == ref.crossings_horizon_ns
        assert new.harmonic_orders == ref.harmonic_orders
        n_records += len(want)
        n_flagged += sum(m.flagged for m in want)
        n_none += sum(v is None for m in want for v in m.fields.values())
        intervals.update(m.interval for m in want)
    got, want = new.flush(), ref.flush()
    _assert_same(got, want)
    intervals.update(m.interval for m in want)
    # the comparison covered every kind of record, flagged ones and missing values
    assert intervals == {"basic", "150c", "10min", "2h"}
    assert n_records > 90 * 20
    assert n_flagged > 0
    assert n_none > 0


@pytest.mark.parametrize("seed", [4, 5])
def test_batches_cut_at_aggregates_give_the_reference_records(seed: int) -> None:
    # the collector's batching returns records later, never other ones: over the
    # whole stream (random blocks, a gap, missing samples, flags) the same records
    # in the same order, and the same crossings
    caps, fs_hz, t0_ns, x = _signal()
    circuits = circuits_from_capabilities(caps)
    ref_circuits = [RefCircuitSpec(c.id, c.current_channels, c.voltage_channels) for c in circuits]
    new = MetricsEngine(caps, circuits, batch_s=5.0, batch_to_aggregates=True)
    ref = RefEngine(caps, ref_circuits)
    got: list[Metrics] = []
    want: list[Metrics] = []
    new_crossings: list[int] = []
    ref_crossings: list[int] = []
    for i, block in enumerate(_blocks(x, fs_hz, t0_ns, seed)):
        disturbed = [(block.t0_ns, block.t0_ns + NS_PER_S // 10)] if i % 97 == 5 else []
        got += new.process(block, disturbed)
        want += ref.process(block, disturbed)
        new_crossings += new.crossings_ns.tolist()
        ref_crossings += ref.crossings_ns.tolist()
    got += new.flush()
    want += ref.flush()
    new_crossings += new.crossings_ns.tolist()  # found by the flush
    ref_crossings += ref.crossings_ns.tolist()
    _assert_same(got, want)
    assert new_crossings == ref_crossings
    assert {m.interval for m in want} == {"basic", "150c", "10min", "2h"}
    assert sum(m.flagged for m in want) > 0
