"""Detection latency of the worker's own fault types (the figures in docs/faults.md):
time from the onset of a condition in the records to the alert, on an injected clock,
with the collector's ~3 s records. Deployment adds the collector's write flush (1 s)
and the worker's poll period (5 s)."""

from __future__ import annotations

import math

import pytest

from collector.clock import FakeClock
from collector.model import Metrics
from collector.worker.audit import MemoryAudit
from collector.worker.engine import WorkerEngine
from collector.worker.outputs import SimulatedOutputs
from collector.worker.settings import CircuitSpec, WorkerSettings
from collector.worker.thermal import ThermalParams, trip_time_s

RECORD_S = 3.0
SINE_CREST = math.sqrt(2.0)


def _latency_s(fields_at: object, max_s: float, fault_type: str) -> float:
    """Seconds from the first record of the condition to the alert of ``fault_type``."""
    clock = FakeClock()
    engine = WorkerEngine(WorkerSettings(site="lab", circuits=(CircuitSpec("pump", 16.0),)),
                          clock=clock, outputs=SimulatedOutputs(clock), notifiers=[],
                          audit=MemoryAudit())
    assert callable(fields_at)
    for k in range(round(max_s / RECORD_S)):
        engine.on_metrics([Metrics(clock.now_ns(), "150c", "pump", "A", fields_at(k))])
        if any(a.type == fault_type for a in engine.book.alerts()):
            return (k + 1) * RECORD_S  # the record covering [k*3, k*3+3) s completed it
        clock.sleep(RECORD_S)
    return math.inf


def _normal(k: int) -> dict[str, float]:
    return {"voltage_rms_v": 230.0 + 0.1 * (k % 7), "current_rms_a": 5.0 + 0.01 * (k % 5),
            "voltage_crest_factor": SINE_CREST, "current_crest_factor": SINE_CREST}


def test_thermal_overload_latency_at_125_pct_from_cold() -> None:
    p = ThermalParams(16.0)
    warn = _latency_s(lambda k: {**_normal(k), "current_rms_a": 20.0}, 900, "thermal_overload")
    x2, th = 1.25**2, p.approach_level * p.trip_heat_pu
    expected = p.time_constant_s * math.log(x2 / (x2 - th))  # closed form: 286.5 s
    assert expected <= warn < expected + RECORD_S
    assert trip_time_s(1.25, p) == pytest.approx(357.4, abs=0.1)


def test_sensor_latencies() -> None:
    stuck = _latency_s(lambda k: {**_normal(k), "voltage_rms_v": 231.0}, 900, "sensor_stuck")
    assert stuck == 603.0  # 600 s of identical values, seen when the 201st record ends
    flat = _latency_s(lambda k: {**_normal(k), "current_crest_factor": 1.0}, 60, "sensor_flat")
    assert flat == 6.0  # two records
    implausible = _latency_s(lambda k: {**_normal(k), "frequency_hz": 30.0}, 60,
                             "sensor_implausible")
    assert implausible == 6.0
    assert _latency_s(_normal, 1200, "sensor_stuck") == math.inf  # real data: nothing
