"""The shipped example validates, and a minimal config gets the standards' defaults."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from collector.assembly import RunSettings, settings_from_config
from collector.config import GridGuardConfig, load_config, load_config_with_warnings, parse_config
from collector.config.dump import to_data
from collector.config.errors import ConfigError
from collector.config.sensors import Acs712Sensor, Sct013Sensor
from collector.model import Phase
from tests.config.conftest import EXAMPLE


def test_example_validates_without_warnings() -> None:
    cfg, warnings = load_config_with_warnings(EXAMPLE, resolve_secrets=False)
    assert warnings == ()
    assert cfg.system.nominal_voltage_v == 230
    assert len(cfg.circuits) == 12
    assert [ch.id for ch in cfg.channels.voltage] == ["v_a", "v_b", "v_c"]
    assert {c.id for c in cfg.circuits if c.critical} == {"server", "ventilation"}
    assert cfg.circuit("solar").kind.value == "generation"
    # secrets are only references in the example
    assert cfg.influx.token is not None
    assert cfg.influx.token.file is not None
    assert not cfg.influx.token.is_resolved


def test_example_covers_every_section() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for section in GridGuardConfig.model_fields:
        assert f"\n{section}:" in text, section


def test_example_relative_paths_resolve_against_the_file() -> None:
    cfg = load_config(EXAMPLE, resolve_secrets=False)
    assert cfg.source.simulated is not None
    assert cfg.source.simulated.scenario == EXAMPLE.parent / "scenarios" / "demo.yaml"


def test_example_sensor_transfers_match_datasheets() -> None:
    cfg = load_config(EXAMPLE, resolve_secrets=False)
    fridge = cfg.channel("i_server").sensor
    assert isinstance(fridge, Acs712Sensor)
    assert fridge.sensitivity_v_per_a == pytest.approx(0.100)  # ACS712 x20A: 100 mV/A
    assert fridge.zero_v == pytest.approx(2.5)  # VCC/2 at 5 V
    ev = cfg.channel("i_ev_charger_a").sensor
    assert isinstance(ev, Sct013Sensor)
    # 100 A : 50 mA = 2000 turns; 33 ohm burden -> 33/2000 V/A
    assert ev.volts_per_amp == pytest.approx(33.0 / 2000.0)
    hp = cfg.channel("i_heat_pump_a").sensor
    assert isinstance(hp, Sct013Sensor)
    assert hp.units_per_volt == pytest.approx(30.0)  # SCT-013-030: 1 V at 30 A


def test_minimal_config_gets_standard_defaults(minimal: dict[str, Any]) -> None:
    cfg = parse_config(minimal)
    v = cfg.thresholds.voltage
    # IEC 61000-4-30 / EN 50160 values, not re-derived from the code
    assert (v.dip_threshold_pct, v.swell_threshold_pct, v.interruption_threshold_pct) == (
        90.0, 110.0, 5.0)
    assert v.hysteresis_pct == 2.0
    assert (v.undervoltage_critical_pct, v.overvoltage_critical_pct) == (90.0, 110.0)
    assert cfg.thresholds.thd_voltage_max_pct == 8.0
    assert cfg.thresholds.unbalance_max_pct == 2.0
    assert cfg.thresholds.ground_fault_threshold_a == pytest.approx(0.030)
    assert cfg.frequency_band_hz() == pytest.approx((49.5, 50.5))
    assert cfg.thresholds.current.overcurrent_pct_of_rating == 100.0
    assert cfg.influx.write.batch_size == 5000
    assert cfg.influx.retention.raw_days == 7
    assert cfg.mqtt.topic_prefix == "gridguard"
    assert cfg.mqtt.discovery_prefix == "homeassistant"
    assert cfg.mqtt.effective_port == 1883
    assert cfg.alerts.webhook.bind_host == "127.0.0.1"
    assert cfg.events.waveform_capture.pre_cycles == 5
    assert cfg.events.waveform_capture.post_cycles == 10
    assert not cfg.influx.enabled
    assert not cfg.mqtt.enabled
    assert not cfg.load_control.enabled
    assert cfg.tariff is None


def test_frequency_band_follows_60_hz_nominal(minimal: dict[str, Any]) -> None:
    minimal["system"] = {"type": "split_phase", "nominal_voltage_v": 120,
                         "nominal_frequency_hz": 60}
    minimal["channels"]["voltage"] = [{"id": "v1", "phase": "L1"}, {"id": "v2", "phase": "L2"}]
    minimal["channels"]["current"] = [{"id": "i1", "phase": "A"}, {"id": "i2", "phase": "B"}]
    minimal["circuits"] = [{"id": "dryer", "phases": "AB", "current_channels": ["i1", "i2"],
                            "breaker_rating_a": 30}]
    cfg = parse_config(minimal)
    lo, hi = cfg.frequency_band_hz()
    assert (lo, hi) == pytest.approx((59.4, 60.6))  # ±1 % of 60 Hz
    assert cfg.voltage_channels_for("dryer") == ("v1", "v2")
    assert cfg.channel("v2").phase is Phase.B


def test_voltage_channels_default_per_phase(minimal: dict[str, Any]) -> None:
    cfg = parse_config(minimal)
    assert cfg.voltage_channels_for("kitchen") == ("va",)
    assert cfg.voltage_channels_for("heat_pump") == ("va", "vb", "vc")
    assert cfg.circuit_of_channel("i_hp_b") == "heat_pump"
    assert cfg.circuit_of_channel("va") is None


def test_config_is_frozen(minimal: dict[str, Any]) -> None:
    cfg = parse_config(minimal)
    with pytest.raises(ValueError, match="frozen"):
        cfg.site.id = "other"  # type: ignore[misc]


def test_dump_round_trips_the_example() -> None:
    cfg = load_config(EXAMPLE, resolve_secrets=False)
    again = parse_config(to_data(cfg))
    assert again == cfg


@pytest.mark.parametrize(("variant", "v_per_a"), [("5a", 0.185), ("20a", 0.100), ("30a", 0.066)])
def test_acs712_datasheet_sensitivity(
    minimal: dict[str, Any], variant: str, v_per_a: float
) -> None:
    minimal["channels"]["current"][0]["sensor"] = {"type": "acs712", "variant": variant}
    cfg = parse_config(minimal)
    sensor = cfg.channel("i_kitchen").sensor
    assert isinstance(sensor, Acs712Sensor)
    assert sensor.sensitivity_v_per_a == pytest.approx(v_per_a)
    # measuring range ±5/20/30 A peak -> sinusoidal RMS = peak/sqrt(2)
    assert sensor.rated_rms == pytest.approx(float(variant[:-1]) / math.sqrt(2))


def test_phases_accept_electricians_spellings(minimal: dict[str, Any]) -> None:
    minimal["circuits"][1]["phases"] = "L1 L2 L3"
    minimal["channels"]["current"][2]["phase"] = "l2"
    cfg = parse_config(minimal)
    assert cfg.circuit("heat_pump").phases == (Phase.A, Phase.B, Phase.C)


def test_load_config_reads_file(tmp_path: Path, minimal: dict[str, Any]) -> None:
    import yaml

    path = tmp_path / "gg.yaml"
    path.write_text(yaml.safe_dump(minimal), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.source.simulated is not None
    assert cfg.source.simulated.scenario == tmp_path / "scenarios" / "demo.yaml"


def test_process_interval_reaches_the_pipeline_and_is_bounded(minimal: dict[str, Any]) -> None:
    assert parse_config(minimal).source.process_interval_s == RunSettings().process_s == 1.0
    minimal["source"]["process_interval_s"] = 0
    assert settings_from_config(parse_config(minimal)).process_s == 0.0
    minimal["source"]["process_interval_s"] = 2.5
    assert settings_from_config(parse_config(minimal)).process_s == 2.5
    for bad in (-0.1, 11):
        minimal["source"]["process_interval_s"] = bad
        with pytest.raises(ConfigError, match=r"source\.process_interval_s"):
            parse_config(minimal)
