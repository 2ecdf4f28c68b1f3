"""PZEM-004T v3.0 source against a real pymodbus RTU server on a pty pair.

Reference values: the register map and scaling, and the example frames of the
PZEM-004T V3.0 user manual §2 (read measurement ``01 04 00 00 00 0A 70 0D``,
reset energy ``01 42 80 11``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from collector.clock import FakeClock
from collector.config import GridGuardConfig, parse_config
from collector.model import Event, EventType
from collector.sources.hardware.pzem import (
    FAULT_AFTER_FAILURES,
    PzemBus,
    PzemError,
    PzemSource,
    decode_registers,
)
from tests.hardware.pzem_server import MeterModel, PzemServer, pzem_server

TIMEOUT_S = 0.15


def _config(port: str, addresses: list[int], generation: tuple[int, ...] = ()) -> GridGuardConfig:
    voltage: list[dict[str, Any]] = [{"id": "v_a", "phase": "A", "adc": {"device": addresses[0]}}]
    current = [{"id": f"i_m{a}", "phase": "A", "adc": {"device": a}} for a in addresses]
    circuits = [
        {"id": f"m{a}", "phases": ["A"], "current_channels": [f"i_m{a}"], "breaker_rating_a": 32,
         **({"kind": "generation"} if a in generation else {})}
        for a in addresses
    ]
    return parse_config({
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "pzem", "pzem": {"port": port, "addresses": addresses,
                                            "poll_interval_s": 1.0}},
        "channels": {"voltage": voltage, "current": current},
        "circuits": circuits,
    })


@pytest.fixture
def server() -> Iterator[PzemServer]:
    meters = {
        1: MeterModel(231.4, 4.321, 950.3, 12345, 49.9, 0.95),
        2: MeterModel(229.9, 70.5, 15073.2, 1_234_567, 50.1, 0.93, alarm=True),
        3: MeterModel(230.2, 1.0, 200.0, 10, 50.0, 0.87),
    }
    with pzem_server(meters) as srv:
        yield srv


def test_registers_decode_with_the_manual_scaling() -> None:
    # 231.4 V, 70.500 A (needs the high word), 15073.2 W, 1234567 Wh, 50.1 Hz, PF 0.93
    regs = [2314, 70500 & 0xFFFF, 70500 >> 16, 150732 & 0xFFFF, 150732 >> 16,
            1234567 & 0xFFFF, 1234567 >> 16, 501, 93, 0xFFFF]
    r = decode_registers(7, regs)
    assert (r.voltage_v, r.current_a, r.power_w, r.energy_wh) == (231.4, 70.5, 15073.2, 1234567)
    assert (r.frequency_hz, r.power_factor, r.alarm) == (50.1, 0.93, True)
    with pytest.raises(ValueError, match="expected 10 input registers, got 9"):
        decode_registers(7, regs[:9])


def test_request_frames_are_the_manuals(server: PzemServer) -> None:
    bus = PzemBus(server.port, timeout_s=TIMEOUT_S)
    try:
        bus.read(1)
        bus.reset_energy(1)
    finally:
        bus.close()
    requests = [f for kind, f in server.wire.log if kind == "request"]
    assert requests[0] == bytes.fromhex("01 04 00 00 00 0A 70 0D")
    assert requests[1] == bytes.fromhex("01 42 80 11")
    replies = [f for kind, f in server.wire.log if kind == "reply"]
    assert replies[1] == bytes.fromhex("01 42 80 11")  # a good reset echoes the request


def test_source_turns_readings_into_metrics(server: PzemServer) -> None:
    cfg = _config(server.port, [1, 2], generation=(2,))
    clock = FakeClock()
    src = PzemSource(cfg, clock=clock, timeout_s=TIMEOUT_S)
    assert src.capabilities.waveform is False
    batch = src.read()
    assert batch.errors == ()
    by = {m.channel: m for m in batch.metrics}
    assert set(by) == {"v_a", "m1", "m2"}
    assert all(m.interval == "reading" for m in batch.metrics)
    v = by["v_a"].fields
    assert v["voltage_rms_v"] == pytest.approx(231.4)
    assert v["frequency_hz"] == pytest.approx(49.9)
    m1 = by["m1"].fields
    assert m1["current_rms_a"] == pytest.approx(4.321)
    assert m1["power_active_w"] == pytest.approx(950.3)
    assert m1["power_apparent_va"] == pytest.approx(231.4 * 4.321)
    assert m1["power_factor"] == pytest.approx(0.95)
    assert m1["energy_import_wh"] == 12345.0
    assert m1["energy_export_wh"] is None
    assert m1["power_reactive_var"] is None  # the module does not measure Q1
    # a generation circuit: the module cannot see direction, the config says export
    m2 = by["m2"].fields
    assert m2["power_active_w"] == pytest.approx(-15073.2)
    assert m2["energy_export_wh"] == 1234567.0
    assert m2["meter_alarm"] is True
    # polls are paced by the clock
    src.read()
    assert clock.t_s == pytest.approx(1.0)
    src.close()


def test_missing_meter_is_named_and_the_others_go_on(server: PzemServer) -> None:
    server.wire.absent.add(3)
    cfg = _config(server.port, [1, 3, 2])
    src = PzemSource(cfg, clock=FakeClock(), timeout_s=TIMEOUT_S)
    started: list[Event] = []
    for _ in range(FAULT_AFTER_FAILURES):
        batch = src.read()
        assert {m.channel for m in batch.metrics} == {"v_a", "m1", "m2"}
        assert len(batch.errors) == 1
        assert "address 3: no reply within 0.15 s" in batch.errors[0]
        started += batch.started
    assert len(started) == 1
    fault = started[0]
    assert fault.type is EventType.SENSOR_FAULT
    assert fault.details["fault"] == "no_reply"
    assert fault.channel == "m3"
    assert fault.duration_s is None
    server.wire.absent.clear()  # the meter is back
    batch = src.read()
    assert {m.channel for m in batch.metrics} == {"v_a", "m1", "m2", "m3"}
    assert [e.details["event_id"] for e in batch.events] == [fault.details["event_id"]]
    assert batch.events[0].duration_s == pytest.approx(FAULT_AFTER_FAILURES * 1.0)
    src.close()


def test_crc_error_and_timeout_are_told_apart(server: PzemServer) -> None:
    bus = PzemBus(server.port, timeout_s=TIMEOUT_S)
    try:
        server.wire.garble.add(2)
        with pytest.raises(PzemError, match="garbled reply") as garbled:
            bus.read(2)
        assert garbled.value.kind == "crc_error"
        server.wire.garble.clear()
        server.wire.swallow.add(2)
        with pytest.raises(PzemError, match="no reply") as silent:
            bus.read(2)
        assert silent.value.kind == "no_reply"
        server.wire.swallow.clear()
        assert bus.read(2).current_a == pytest.approx(70.5)  # the bus recovers
        assert bus.read(1).voltage_v == pytest.approx(231.4)
    finally:
        bus.close()


def test_energy_reset(server: PzemServer) -> None:
    cfg = _config(server.port, [1, 2])
    src = PzemSource(cfg, clock=FakeClock(), timeout_s=TIMEOUT_S)
    src.reset_energy(1)
    assert server.meters[1].energy_wh == 0
    by = {m.channel: m for m in src.read().metrics}
    assert by["m1"].fields["energy_import_wh"] == 0.0
    assert by["m2"].fields["energy_import_wh"] == 1234567.0  # the other meter untouched
    with pytest.raises(ValueError, match=r"not in source\.pzem\.addresses"):
        src.reset_energy(9)
    server.wire.absent.add(2)
    with pytest.raises(PzemError, match=r"address 2: no reply"):
        src.reset_energy(2)
    src.close()


def test_port_that_does_not_exist_is_a_clear_error(tmp_path: Any) -> None:
    from collector.sources.hardware.environment import HardwareUnavailableError

    with pytest.raises(HardwareUnavailableError, match="cannot open serial port"):
        PzemBus(str(tmp_path / "ttyUSB9"), timeout_s=TIMEOUT_S)
