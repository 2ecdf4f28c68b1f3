"""Every class of configuration error is reported as `key.path: what, got value`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector.config import ConfigError, load_config, parse_config


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


def test_out_of_range_names_path_and_value(minimal: dict[str, Any]) -> None:
    minimal["channels"]["current"][2]["sensor"] = {
        "type": "acs712", "variant": "30a", "sensitivity_v_per_a": -0.066}
    assert problems_of(minimal) == [
        "channels.current[2].sensor.sensitivity_v_per_a: must be > 0, got -0.066"
    ]


def test_wrong_type(minimal: dict[str, Any]) -> None:
    minimal["circuits"][0]["breaker_rating_a"] = "sixteen"
    minimal["system"]["nominal_frequency_hz"] = 55
    assert problems_of(minimal) == [
        "system.nominal_frequency_hz: must be 50 or 60, got 55",
        "circuits[0].breaker_rating_a: must be a number, got 'sixteen'",
    ]


def test_unknown_key_suggests_the_right_one(minimal: dict[str, Any]) -> None:
    minimal["thresholds"] = {"voltage": {"swel_threshold_pct": 112}}
    minimal["circuits"][1]["breaker_ratting_a"] = 16
    found = problems_of(minimal)
    assert ("thresholds.voltage.swel_threshold_pct: unknown key (did you mean "
            "'swell_threshold_pct'?), got 112") in found
    assert any(p.startswith("circuits[1].breaker_ratting_a: unknown key (did you mean "
                            "'breaker_rating_a'?)") for p in found)


def test_unknown_top_level_section(minimal: dict[str, Any]) -> None:
    minimal["threshold"] = {}
    assert problems_of(minimal) == [
        "threshold: unknown key (did you mean 'thresholds'?), got {}"
    ]


def test_missing_required(minimal: dict[str, Any]) -> None:
    del minimal["system"]
    del minimal["circuits"][0]["breaker_rating_a"]
    found = problems_of(minimal)
    assert "system: is required" in found
    assert "circuits[0].breaker_rating_a: is required" in found


def test_missing_source_subsection(minimal: dict[str, Any]) -> None:
    minimal["source"] = {"type": "ads1115"}
    assert problems_of(minimal) == ["source.ads1115: is required when source.type is ads1115"]


def test_bad_cross_reference(minimal: dict[str, Any]) -> None:
    minimal["circuits"][0]["current_channels"] = ["i_kichen"]
    minimal["circuits"][1]["voltage_channels"] = ["va", "vb", "i_hp_c"]
    found = problems_of(minimal)
    assert ("circuits[0].current_channels[0]: no such current channel; have i_hp_a, "
            "i_hp_b, i_hp_c, i_kitchen, got 'i_kichen'") in found
    assert ("circuits[1].voltage_channels[2]: is a current channel, not a voltage channel, "
            "got 'i_hp_c'") in found


def test_voltage_of_another_phase_is_refused(minimal: dict[str, Any]) -> None:
    # P = mean(v*i) with the wrong phase's voltage is off by the 120° angle: never allow it
    minimal["circuits"][0]["voltage_channels"] = ["vb"]
    assert problems_of(minimal) == [
        "circuits[0].voltage_channels[0]: is on phase B, but the circuit is on A, got 'vb'"
    ]


def test_duplicate_ids(minimal: dict[str, Any]) -> None:
    minimal["channels"]["current"][3]["id"] = "va"
    assert problems_of(minimal) == [
        "channels.current[3].id: duplicate channel id, also channels.voltage[0], got 'va'"
    ]


def test_duplicate_circuit_id_and_shared_ct(minimal: dict[str, Any]) -> None:
    minimal["circuits"].append(dict(minimal["circuits"][0]))
    found = problems_of(minimal)
    assert "circuits[2].id: duplicate circuit id, also circuits[0], got 'kitchen'" in found
    assert ("circuits[2].current_channels[0]: already belongs to circuits[0] (kitchen), "
            "got 'i_kitchen'") in found


def test_phase_inconsistent_with_system_type(minimal: dict[str, Any]) -> None:
    minimal["system"]["type"] = "single_phase"
    minimal["channels"]["voltage"] = [{"id": "va", "phase": "A"}, {"id": "vb", "phase": "B"}]
    minimal["channels"]["current"] = [{"id": "i_kitchen", "phase": "A"},
                                      {"id": "i2", "phase": "C"}]
    minimal["circuits"] = [
        {"id": "kitchen", "phases": ["A"], "current_channels": ["i_kitchen"],
         "breaker_rating_a": 16},
        {"id": "oven", "phases": ["C"], "current_channels": ["i2"], "breaker_rating_a": 16},
    ]
    found = problems_of(minimal)
    assert "channels.voltage[1].phase: a single_phase system has phases A, got 'B'" in found
    assert ("channels.current[1].phase: a single_phase system has phases A (and N for a "
            "neutral CT), got 'C'") in found
    assert "circuits[1].phases[0]: a single_phase system has phases A, got 'C'" in found


def test_circuit_needs_one_ct_per_phase(minimal: dict[str, Any]) -> None:
    minimal["circuits"][1]["current_channels"] = ["i_hp_a", "i_hp_b"]
    assert problems_of(minimal) == [
        "circuits[1].current_channels: needs one current channel per phase; none on C, "
        "got ['i_hp_a', 'i_hp_b']"
    ]


def test_missing_voltage_channel_for_a_phase(minimal: dict[str, Any]) -> None:
    minimal["channels"]["voltage"] = [{"id": "va", "phase": "A"}]
    found = problems_of(minimal)
    assert found == [
        "circuits[1].phases: no voltage channel on phase B to measure power with; add one to "
        "channels.voltage, got ['A', 'B', 'C']",
        "circuits[1].phases: no voltage channel on phase C to measure power with; add one to "
        "channels.voltage, got ['A', 'B', 'C']",
    ]


def test_critical_circuit_cannot_be_shed(minimal: dict[str, Any]) -> None:
    minimal["circuits"][0]["critical"] = True
    minimal["load_control"] = {"enabled": True, "demand_limit_w": 8000,
                               "relays": [{"circuit": "kitchen", "gpio_pin": 5}]}
    assert problems_of(minimal) == [
        "load_control.relays[0].circuit: is a critical circuit and must never be shed; remove "
        "the relay or the critical flag, got 'kitchen'"
    ]


def test_load_control_needs_a_limit_and_known_circuits(minimal: dict[str, Any]) -> None:
    minimal["load_control"] = {"enabled": True, "relays": [{"circuit": "sauna", "gpio_pin": 5}]}
    found = problems_of(minimal)
    assert ("load_control.relays[0].circuit: no such circuit; have kitchen, heat_pump, "
            "got 'sauna'") in found
    assert any(p.startswith("load_control.demand_limit_w: is required") for p in found)


def test_gpio_conflicts(minimal: dict[str, Any]) -> None:
    minimal["load_control"] = {"relays": [{"circuit": "kitchen", "gpio_pin": 17}]}
    minimal["alerts"] = {"local": {"buzzer_pin": 17, "led_pins": {"warning": 30}}}
    found = problems_of(minimal)
    assert ("alerts.local.led_pins.warning: must be a BCM GPIO number 0..27 (40-pin header), "
            "got 30") in found
    minimal["alerts"]["local"]["led_pins"]["warning"] = 22
    assert problems_of(minimal) == [
        "alerts.local.buzzer_pin: GPIO17 is already used by load_control.relays[0].gpio_pin, "
        "got 17"
    ]


def test_inline_placeholder_secret_is_rejected_without_echo(minimal: dict[str, Any]) -> None:
    minimal["influx"] = {"enabled": True, "token": "changeme"}
    minimal["mqtt"] = {"username": "gg", "password": "pw1"}
    minimal["alerts"] = {"webhook": {"enabled": True, "bearer_token": "0123456789"}}
    with pytest.raises(ConfigError) as info:
        parse_config(minimal)
    text = str(info.value)
    assert [str(p).split(";")[0] for p in info.value.problems] == [
        "influx.token: is a known default or placeholder value",
        "mqtt.password: is shorter than 8 characters",
        "alerts.webhook.bearer_token: is shorter than 16 characters",
    ]
    for secret in ("changeme", "pw1", "0123456789"):
        assert secret not in text


def test_misspelt_secret_key_does_not_echo_the_value(minimal: dict[str, Any]) -> None:
    minimal["influx"] = {"tokne": "f3a9c1d27be84e55a0c1"}
    found = problems_of(minimal)
    assert found == ["influx.tokne: unknown key (did you mean 'token'?) (value hidden)"]


def test_secret_given_twice(minimal: dict[str, Any]) -> None:
    minimal["influx"] = {"token_env": "INFLUX_TOKEN", "token_file": "/run/secrets/t"}
    assert problems_of(minimal) == [
        "influx.token: give exactly one of token, token_env or token_file"
    ]


def test_enabled_integration_needs_its_secret(minimal: dict[str, Any]) -> None:
    minimal["influx"] = {"enabled": True}
    minimal["alerts"] = {"webhook": {"enabled": True}}
    found = problems_of(minimal)
    assert found[0].startswith("influx.token: is required when influx.enabled is true")
    assert found[1].startswith("alerts.webhook.bearer_token: is required when the webhook")


def test_every_problem_is_listed_across_sections(minimal: dict[str, Any]) -> None:
    # a typo in thresholds must not hide a wrong channel reference elsewhere
    minimal["thresholds"] = {"thd_voltage_max_pct": -1}
    minimal["circuits"][0]["current_channels"] = ["nope"]
    minimal["site"]["id"] = "Main Panel"
    found = problems_of(minimal)
    assert len(found) == 3
    assert found[0].startswith("site.id: must be a slug")
    assert found[0].endswith("got 'Main Panel'")
    assert "thresholds.thd_voltage_max_pct: must be > 0, got -1" in found
    assert any(p.startswith("circuits[0].current_channels[0]: no such current channel")
               for p in found)


def test_threshold_order(minimal: dict[str, Any]) -> None:
    minimal["thresholds"] = {
        "voltage": {"interruption_threshold_pct": 50, "dip_threshold_pct": 40},
        "current": {"warning_pct_of_rating": 120},
    }
    found = problems_of(minimal)
    assert ("thresholds.voltage.interruption_threshold_pct: must be below dip_threshold_pct "
            "(40), got 50") in found
    assert ("thresholds.current.warning_pct_of_rating: must be below "
            "overcurrent_pct_of_rating (100), got 120") in found


def test_hysteresis_must_let_events_end(minimal: dict[str, Any]) -> None:
    minimal["thresholds"] = {"voltage": {"dip_threshold_pct": 97, "hysteresis_pct": 3}}
    assert problems_of(minimal) == [
        "thresholds.voltage.hysteresis_pct: must be smaller than the gap between thresholds "
        "(3 %), got 3"
    ]


def test_time_of_use_overlap(minimal: dict[str, Any]) -> None:
    minimal["tariff"] = {"import_price_per_kwh": 0.3, "time_of_use": [
        {"name": "night", "start": "22:00", "end": "06:00", "import_price_per_kwh": 0.2},
        {"name": "early", "start": "05:00", "end": "07:00", "import_price_per_kwh": 0.25},
        {"name": "noon", "start": "12:00", "end": "14:00", "import_price_per_kwh": 0.1,
         "days": ["sat", "sun"]},
    ]}
    assert problems_of(minimal) == [
        "tariff.time_of_use[1]: overlaps time_of_use[0] (night), got 'early'"
    ]


def test_sensor_type_must_fit_the_channel(minimal: dict[str, Any]) -> None:
    minimal["channels"]["voltage"][0]["sensor"] = {"type": "acs712", "variant": "5a"}
    minimal["channels"]["current"][0]["sensor"] = {"variant": "030"}
    assert problems_of(minimal) == [
        "channels.voltage[0].sensor.type: must be one of 'zmpt101b', 'divider', 'direct', "
        "got 'acs712'",
        "channels.current[0].sensor.type: is required to say which kind this is (one of "
        "'acs712', 'sct013', 'direct')",
    ]


def test_sct013_burden_rules(minimal: dict[str, Any]) -> None:
    ch = minimal["channels"]["current"]
    ch[0]["sensor"] = {"type": "sct013", "variant": "100"}
    ch[1]["sensor"] = {"type": "sct013", "variant": "030", "burden_ohm": 22}
    ch[2]["sensor"] = {"type": "sct013", "variant": 24}  # '030' read as octal by YAML 1.1
    found = problems_of(minimal)
    assert found[0] == ("channels.current[0].sensor.burden_ohm: is required for SCT-013-100 "
                        "(current output, 50 mA at 100 A)")
    assert found[1] == ("channels.current[1].sensor.burden_ohm: SCT-013-030 has a built-in "
                        "burden; remove burden_ohm, got 22")
    assert found[2].startswith("channels.current[2].sensor.variant: must be one of 005, 010, "
                               "015, 020, 025, 030, 050, 060, 000, 100")
    assert found[2].endswith("got 24")


def test_calibration_rules(minimal: dict[str, Any]) -> None:
    minimal["channels"]["voltage"][0]["calibration"] = {
        "file": "cal/va.yaml", "gain": 1.02}
    minimal["channels"]["voltage"][1]["calibration"] = {
        "gain_points": [{"reading": 10, "reference": 10.1}, {"reading": 5, "reference": 5.1}]}
    found = problems_of(minimal)
    assert found == [
        "channels.voltage[0].calibration: give either file or inline values, not both: gain",
        "channels.voltage[1].calibration.gain_points[1].reading: must be larger than "
        "gain_points[0].reading (10.0), got 5",
    ]


def test_ads1115_inputs_are_checked(minimal: dict[str, Any]) -> None:
    minimal["source"] = {"type": "ads1115", "ads1115": {"devices": [
        {"address": "0x48"}, {"address": 0x49, "full_scale_v": 3.3}]}}
    zmpt = {"type": "zmpt101b", "ratio": 500, "zero_v": 1.65}
    sct = {"type": "sct013", "variant": "030"}
    minimal["channels"]["voltage"] = [
        {"id": "va", "phase": "A", "sensor": zmpt, "adc": {"device": 0x48, "channel": 0}},
        {"id": "vb", "phase": "B", "sensor": zmpt, "adc": {"device": 0x48, "channel": 4}},
        {"id": "vc", "phase": "C", "sensor": zmpt, "adc": {"device": 0x4A, "channel": 0}},
    ]
    ch = minimal["channels"]["current"]
    ch[0].update(sensor=sct, adc={"device": 0x49, "differential": [0, 2]})
    ch[1].update(sensor=sct, adc={"device": 0x48, "differential": [0, 1]})
    ch[2].update(adc={"channel": 3})
    ch[3].update(sensor=sct)
    found = problems_of(minimal)
    assert found == [
        "source.ads1115.devices[1].full_scale_v: must be one of 6.144, 4.096, 2.048, 1.024, "
        "0.512, 0.256, got 3.3",
    ]
    minimal["source"]["ads1115"]["devices"][1]["full_scale_v"] = 4.096
    found = problems_of(minimal)
    assert found == [
        "channels.voltage[1].adc.channel: must be 0..3 for ads1115, got 4",
        "channels.voltage[2].adc.device: is not in source.ads1115.devices (0x48, 0x49), "
        "got 0x4A",
        "channels.current[0].adc.differential: ads1115 offers the pairs [0,1], [0,3], [1,3], "
        "[2,3], got [0, 2]",
        "channels.current[1].adc: input 0 is already used by channels.voltage[0], got 0x48:0-1",
        "channels.current[2].sensor: is required when source.type is ads1115",
        "channels.current[2].adc.device: is required: several ADS1115 on the bus (0x48, 0x49)",
        "channels.current[3].adc: is required when source.type is ads1115",
    ]


def test_gpio_of_the_adc_bus_is_refused(minimal: dict[str, Any]) -> None:
    minimal["source"] = {"type": "mcp3008", "mcp3008": {}}
    sct = {"type": "sct013", "variant": "030", "zero_v": 1.65}
    zmpt = {"type": "zmpt101b", "ratio": 500, "zero_v": 1.65}
    for k, ch in enumerate(minimal["channels"]["voltage"]):
        ch.update(sensor=zmpt, adc={"channel": k})
    for k, ch in enumerate(minimal["channels"]["current"]):
        ch.update(sensor=sct, adc={"channel": 3 + k})
    minimal["alerts"] = {"local": {"buzzer_pin": 10}}
    assert problems_of(minimal) == [
        "alerts.local.buzzer_pin: GPIO10 is SPI0 MOSI, used by the mcp3008 source, got 10"
    ]


def test_pzem_channels(minimal: dict[str, Any]) -> None:
    minimal["source"] = {"type": "pzem", "pzem": {"addresses": [1, 2]}}
    minimal["channels"] = {
        "voltage": [{"id": "va", "phase": "A", "adc": {"device": 1}},
                    {"id": "vb", "phase": "B", "adc": {"device": 1}}],
        "current": [{"id": "i_kitchen", "phase": "A", "adc": {"device": 3},
                     "sensor": {"type": "sct013", "variant": "100", "burden_ohm": 20}}],
        "residual": [{"id": "ir", "adc": {"device": 2}}],
    }
    minimal["circuits"] = minimal["circuits"][:1]
    found = problems_of(minimal)
    assert found == [
        "channels.voltage[1].adc.device: meter 1 gives one voltage reading, already used by "
        "channels.voltage[0], got 1",
        "channels.current[0].sensor: must be omitted: a PZEM meter delivers calibrated "
        "readings from its own CT",
        "channels.current[0].adc.device: is not in source.pzem.addresses, got 3",
        "channels.residual[0]: a PZEM-004T cannot measure residual current",
    ]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("site:\n  id: demo\nsystem:\n  type: three_phase\n   nominal_voltage_v: 230\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.path.startswith(f"{path}:5:")
    assert "YAML syntax error" in problem.message
    assert str(path) in str(info.value)


def test_yaml_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("site:\n  id: a\nsystem: {}\nsite:\n  id: b\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.path == f"{path}:4:1"
    assert "duplicate key 'site' (first at line 1)" in problem.message


def test_validation_errors_carry_yaml_lines(tmp_path: Path) -> None:
    import yaml

    from tests.config.conftest import _MINIMAL

    data = dict(_MINIMAL)
    data["thresholds"] = {"voltage": {"dip_threshold_pct": 120}}
    path = tmp_path / "gg.yaml"
    text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    lines = text.splitlines()
    expected_line = lines.index("thresholds:") + 3  # thresholds: / voltage: / dip_threshold_pct
    assert str(problem) == (f"thresholds.voltage.dip_threshold_pct: must be < 100, got 120 "
                            f"(line {expected_line})")


def test_empty_and_non_mapping_documents(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping of sections, got an empty document"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.yaml")


def test_valid_circuits_are_cross_checked_when_another_is_invalid(
    minimal: dict[str, Any],
) -> None:
    minimal["circuits"][0]["breaker_rating_a"] = 0
    minimal["circuits"][1]["current_channels"] = ["i_hp_a", "i_hp_b", "i_hp_x"]
    # the relay names the invalid circuit: it exists, so no "no such circuit" noise
    minimal["load_control"] = {"relays": [{"circuit": "kitchen", "gpio_pin": 5}]}
    assert problems_of(minimal) == [
        "circuits[0].breaker_rating_a: must be > 0, got 0",
        "circuits[1].current_channels[2]: no such current channel; have i_hp_a, i_hp_b, "
        "i_hp_c, i_kitchen, got 'i_hp_x'",
    ]
