"""The generated reference is complete and committed; warnings catch wrong numbers."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import BaseModel

from collector.config import parse_config
from collector.config.advice import config_warnings
from collector.config.models import GridGuardConfig
from collector.config.reference import BEGIN, END, SENSOR_MODELS, markdown
from collector.config.secrets import Secret
from collector.config.yaml_loader import read_yaml
from tests.config.conftest import REPO


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    import typing

    if model in seen or issubclass(model, Secret):
        return
    seen.add(model)
    for info in model.model_fields.values():
        stack: list[Any] = [info.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                _models(tp, seen)
            stack.extend(a for a in typing.get_args(tp) if a is not Ellipsis)


def test_every_key_has_a_description() -> None:
    seen: set[type[BaseModel]] = set()
    _models(GridGuardConfig, seen)
    for model in SENSOR_MODELS:
        _models(model, seen)
    assert len(seen) > 30
    missing = [f"{m.__name__}.{n}" for m in seen for n, i in m.model_fields.items()
               if not i.description]
    assert missing == []


def test_committed_reference_is_up_to_date() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    assert doc[start:end].strip() == markdown().strip(), (
        "run: python -m collector.config.reference --write docs/configuration.md")


def test_reference_lists_secret_spellings_and_sensors() -> None:
    text = markdown()
    assert "| `influx.token` / `influx.token_env` / `influx.token_file` | secret (token" in text
    assert "#### `type: acs712`" in text
    assert "| `sensor.sensitivity_v_per_a` | number, > 0, ≤ 1 | from variant |" in text


def test_yaml_numbers_that_are_not_numbers() -> None:
    data, lines = read_yaml("a: 22:00\nb: 030\nc: 0x48\nd: 0.030\ne: 1e3\nf: 07\n", source="t")
    assert data == {"a": "22:00", "b": "030", "c": 0x48, "d": 0.030, "e": 1000.0, "f": "07"}
    assert lines == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}


def _paths(data: dict[str, Any]) -> list[str]:
    return [w.path for w in config_warnings(parse_config(data))]


def test_sensor_rated_below_breaker_warns(minimal: dict[str, Any]) -> None:
    # SCT-013-015 is rated 15 A RMS; a 16 A breaker lets more through than it measures
    minimal["channels"]["current"][0]["sensor"] = {"type": "sct013", "variant": "015"}
    assert _paths(minimal) == ["channels.current[0].sensor"]
    minimal["circuits"][0]["breaker_rating_a"] = 13
    assert _paths(minimal) == []


def _mcp3008(minimal: dict[str, Any], zero_v: float) -> dict[str, Any]:
    minimal["source"] = {"type": "mcp3008", "mcp3008": {"vref_v": 3.3}}
    zmpt = {"type": "zmpt101b", "ratio": 250.0, "zero_v": 1.65}
    for k, ch in enumerate(minimal["channels"]["voltage"]):
        ch.update(sensor=zmpt, adc={"channel": k})
    sct = {"type": "sct013", "variant": "030", "zero_v": zero_v}
    for k, ch in enumerate(minimal["channels"]["current"]):
        ch.update(sensor=sct, adc={"channel": 3 + k})
    minimal["events"] = {"arc_detection": {"enabled": False}}
    return minimal


def test_adc_headroom_is_checked_against_the_pin_range(minimal: dict[str, Any]) -> None:
    # 16 A RMS through an SCT-013-030 (1 V per 30 A): ±16·√2/30 = ±0.754 V at the pin.
    # Biased at 1.65 V that is 0.90..2.40 V, inside 0..3.3 V: no warning.
    # Voltage: 230 V · √2 · 1.10 / 250 = ±1.43 V around 1.65 V: inside.
    swing = 16 * math.sqrt(2) / 30
    assert 1.65 - swing > 0
    assert 1.65 + swing < 3.3
    assert _paths(_mcp3008(minimal, zero_v=1.65)) == []


def test_unbiased_input_clips_negative_half_waves(minimal: dict[str, Any]) -> None:
    # Without a bias the single-ended MCP3008 cannot see the negative half-cycles
    found = config_warnings(parse_config(_mcp3008(minimal, zero_v=0.0)))
    assert [w.path for w in found] == [f"channels.current[{k}].adc" for k in range(4)]
    assert "-0.75..0.75 V but the input reads 0.00..3.30 V" in found[0].message


def test_slow_source_cannot_see_arcs(minimal: dict[str, Any]) -> None:
    data = _mcp3008(minimal, zero_v=1.65)
    data["events"] = {}
    # 8000 conversions/s over 7 channels = 1143 samples/s per channel, below 4 kHz
    (warning,) = config_warnings(parse_config(data))
    assert warning.path == "events.arc_detection.enabled"
    assert "~1143" in warning.message


@pytest.mark.parametrize(("voltage", "warned"), [(230, False), (120, False), (400, True)])
def test_nominal_voltage_must_be_phase_to_neutral(
    minimal: dict[str, Any], voltage: float, warned: bool
) -> None:
    minimal["system"]["nominal_voltage_v"] = voltage
    assert (_paths(minimal) == ["system.nominal_voltage_v"]) is warned


def test_unassigned_current_channel_warns(minimal: dict[str, Any]) -> None:
    minimal["channels"]["current"].append({"id": "i_spare", "phase": "B"})
    assert _paths(minimal) == ["channels.current[4]"]
