"""Scenario files: the shipped ones load and do what they say; bad ones name the key path."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.config.errors import ConfigError
from collector.sources.simulated import (
    PRESETS,
    DisturbanceType,
    SimulatedSource,
    load_scenario,
    parse_scenario,
)
from collector.sources.simulated.disturbances import (
    Arcing,
    FrequencyExcursion,
    GroundFault,
    Overload,
    VoltageChange,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "config" / "scenarios"
EXPECTED = {
    "demo", "dip_and_swell", "interruption", "overload", "ground_fault", "open_neutral",
    "frequency_excursion", "harmonics", "arcing", "steady",
}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    return [str(p) for p in info.value.problems]


def minimal(**events: Any) -> dict[str, Any]:
    return {"panel": {"preset": "home_single_phase_230v"}, "events": list(events.values())}


def test_every_listed_scenario_is_shipped_and_loads() -> None:
    names = {p.stem for p in SCENARIOS.glob("*.yaml")}
    assert names >= EXPECTED
    for name in sorted(names):
        scenario = load_scenario(SCENARIOS / f"{name}.yaml")
        assert scenario.duration_s is not None
        assert scenario.duration_s > 0
        for d in scenario.disturbances:
            assert d.at_s + d.duration_s <= scenario.duration_s, name
        src = SimulatedSource.from_scenario(scenario)
        assert next(src.blocks()).samples.shape[0] == len(src.capabilities.channels)


@pytest.mark.parametrize("name", sorted(EXPECTED - {"steady"}))
def test_every_shipped_event_shows_while_it_lasts(name: str) -> None:
    # the demo is only worth watching if loads are on when they are overloaded or arc
    src = SimulatedSource.from_scenario(SCENARIOS / f"{name}.yaml")
    for s in src.scheduled:
        d = s.disturbance
        mid = 0.5 * (s.start_s + s.end_s)
        truth = src.truth_at(mid)
        assert truth.active_events == (s.label,), s.label
        before = src.truth_at(max(0.0, s.start_s - 0.5))
        if isinstance(d, Overload):
            c = truth.circuits[d.circuit]
            assert c.on, s.label
            # over the breaker rating, as the scenario comments say
            assert max(c.current_rms_a) > src.panel.circuit(d.circuit).breaker_rating_a
        elif isinstance(d, Arcing):
            assert truth.circuits[d.circuit].on, s.label
        elif isinstance(d, GroundFault):
            # a fault in the wiring leaks whether or not the appliance runs
            assert truth.residual_current_a is not None
            assert before.residual_current_a is not None
            assert truth.residual_current_a > before.residual_current_a + 0.5 * d.leakage_a
        elif isinstance(d, VoltageChange):
            moved = [abs(truth.voltage_rms_v[p] / before.voltage_rms_v[p] - 1) for p in
                     truth.voltage_rms_v]
            assert max(moved) > 0.1, s.label
        elif isinstance(d, FrequencyExcursion):
            assert truth.frequency_hz == pytest.approx(d.frequency_hz, abs=0.06)


def test_demo_uses_the_three_phase_panel_and_steady_has_no_events() -> None:
    demo = load_scenario(SCENARIOS / "demo.yaml")
    assert demo.panel.name == "three_phase_panel"
    assert len({type(d) for d in demo.disturbances}) >= 6
    assert demo.duration_s is not None
    assert 60 <= demo.duration_s <= 300
    assert load_scenario(SCENARIOS / "steady.yaml").disturbances == ()
    assert load_scenario(SCENARIOS / "open_neutral.yaml").panel.name == "home_split_phase_240v"


def test_steady_scenario_stays_inside_normal_limits() -> None:
    # EN 50160 / IEC 61000-4-30 thresholds a detector would use: no one-cycle RMS leaves
    # 90..110 % of nominal, no circuit exceeds its breaker rating for more than a
    # motor start (0.5 s), residual current stays below 10 mA
    src = SimulatedSource.from_scenario(SCENARIOS / "steady.yaml")
    caps = src.capabilities
    x = src.generate(0, 60 * 6400)
    cycles = x[:, : (x.shape[1] // 128) * 128].reshape(x.shape[0], -1, 128)
    cycle_rms = np.sqrt(np.mean(cycles**2, axis=2))
    for k, ch in enumerate(caps.channels):
        if ch.quantity.value == "voltage":
            assert cycle_rms[k].min() > 0.9 * 230, ch.id
            assert cycle_rms[k].max() < 1.1 * 230, ch.id
        elif ch.quantity.value == "current":
            breaker = src.panel.circuit(ch.circuit or "").breaker_rating_a
            assert np.sum(cycle_rms[k] > breaker) <= 25, ch.id  # 25 cycles = 0.5 s
        else:
            assert cycle_rms[k].max() < 0.010
    f = [src.truth_at(t).frequency_hz for t in range(60)]
    assert max(abs(v - 50.0) for v in f) <= 0.05


def test_from_scenario_overrides_rate_and_seed() -> None:
    a = SimulatedSource.from_scenario(SCENARIOS / "dip_and_swell.yaml", sample_rate_hz=12800.0,
                                      seed=99, block_duration_s=0.05)
    assert a.capabilities.channels[0].rate_hz == 12800.0
    first = next(a.blocks())
    assert first.n_samples == 640
    b = SimulatedSource.from_scenario(SCENARIOS / "dip_and_swell.yaml", seed=99,
                                      sample_rate_hz=12800.0)
    np.testing.assert_array_equal(a.generate(0, 100), b.generate(0, 100))
    c = SimulatedSource.from_scenario(SCENARIOS / "dip_and_swell.yaml", sample_rate_hz=12800.0)
    assert not np.array_equal(a.generate(0, 100), c.generate(0, 100))


def test_scheduled_dip_in_a_scenario_file_appears_at_its_time(tmp_path: Path) -> None:
    path = tmp_path / "dip.yaml"
    path.write_text(textwrap.dedent("""\
        seed: 1
        duration_s: 3
        panel:
          preset: three_phase_panel
          mains: {harmonics: [], noise_v: 0, frequency_drift_hz: 0}
          adc: {bits: 24, noise_lsb: 0}
          circuits: []
          residual_channel: false
        events:
          - {type: voltage_dip, at_s: 1.5, duration_s: 0.2, residual_pct: 30, phases: [L2]}
    """))
    src = SimulatedSource.from_scenario(path)
    v = src.generate(0, 3 * 6400)[1]  # v_b
    n = np.arange(v.shape[0])
    cycle_rms = np.sqrt(np.convolve(v**2, np.ones(128) / 128, mode="valid"))  # one-cycle windows
    start = 9600  # 1.5 s · 6400/s
    assert cycle_rms[start - 128] == pytest.approx(230.0, rel=1e-4)
    assert cycle_rms[start] == pytest.approx(69.0, rel=1e-4)  # window fully inside the dip
    assert cycle_rms[start + 1280 - 128] == pytest.approx(69.0, rel=1e-4)
    assert cycle_rms[start + 1280] == pytest.approx(230.0, rel=1e-4)
    assert np.all(cycle_rms[n[: start - 128]] > 229.9)
    truth = src.truth_at(1.6)
    assert truth.active_events == ("voltage_dip#0",)
    assert truth.voltage_rms_v[next(iter(truth.voltage_rms_v))] == pytest.approx(230.0)


def test_error_names_the_key_path_and_value() -> None:
    data = minimal(
        a={"type": "voltage_dip", "at_s": 1, "duration_s": 0.1, "residual_pct": 50},
        b={"type": "voltage_swell", "at_s": 2, "duration_s": 0.1, "magnitude_pct": 120},
        c={"type": "voltage_dip", "at_s": 3, "duration_s": 0.1, "residual_pct": 140},
    )
    assert problems(data) == ["events[2].residual_pct: must be between 0 and 100, got 140"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": "brownout"}, "events[0].type: must be one of"),
        ({"residual_pct": "deep"}, "events[0].residual_pct: must be a number"),
        ({"duration_s": -1}, "events[0].duration_s: must be > 0, got -1"),
        ({"onset_deg": 400}, "events[0].onset_deg: must be between 0 and 359.999, got 400"),
        ({"phases": ["X"]}, "events[0].phases[0]: must be"),
        ({"phases": ["B"]}, "events[0].phases[0]: must be a line phase of this single_phase"),
        ({"depth_pct": 50}, "events[0].depth_pct: unknown key"),
    ],
)
def test_event_errors(change: dict[str, Any], expected: str) -> None:
    event = {"type": "voltage_dip", "at_s": 1, "duration_s": 0.1, "residual_pct": 50}
    event.update(change)
    event = {k: v for k, v in event.items() if v is not None}
    found = problems(minimal(e=event))
    assert any(p.startswith(expected) for p in found), found


def test_reference_errors_name_the_event() -> None:
    found = problems(minimal(
        a={"type": "overload", "at_s": 1, "duration_s": 1, "circuit": "garage", "factor": 2},
        b={"type": "sensor_fault", "at_s": 1, "duration_s": 1, "channel": "i_x", "kind": "stuck"},
        c={"type": "open_neutral", "at_s": 1, "duration_s": 1, "shift_pct": 20},
        d={"type": "frequency_excursion", "at_s": 1, "duration_s": 1, "frequency_hz": 80},
    ))
    assert found[0].startswith("events[0].circuit: must be a circuit of the panel ['kitchen'")
    assert found[0].endswith("got 'garage'")
    assert found[1].startswith("events[1].channel: must be a channel of the panel")
    assert found[2].startswith("events[2].type: needs a split_phase or three_phase panel")
    assert found[3] == (
        "events[3].frequency_hz: must be between 25 and 75 (within 50 % of the nominal 50 Hz), "
        "got 80"
    )


def test_panel_errors_name_the_key_path() -> None:
    assert problems({"panel": {"preset": "castle"}}) == [
        "panel.preset: must be one of " + ", ".join(sorted(PRESETS)) + ", got 'castle'"
    ]
    assert problems({"panel": {}}) == ["panel.circuits: is required when no preset is given"]
    found = problems({"panel": {"preset": "home_single_phase_230v", "system": "three_phase",
                                "circuits": [
                                    {"id": "m", "phases": ["A", "B"], "breaker_rating_a": 16,
                                     "load": {"type": "motor", "power_w": 1000}},
                                ]}})
    assert len(found) == 1
    assert found[0].startswith("panel.circuits[0].phases: must be one of")
    found = problems({"panel": {"preset": "home_single_phase_230v", "circuits": [
        {"id": "m", "phases": ["A"], "breaker_rating_a": 16,
         "load": {"type": "kettle", "power_w": -5},
         "schedule": {"period_s": 10, "on_s": 20}},
    ]}})
    assert "panel.circuits[0].load.type: must be 'resistive', 'motor'" in found[0]
    assert "panel.circuits[0].load.power_w: must be > 0, got -5" in found
    assert "panel.circuits[0].schedule.on_s: must be between 0 and period_s (10), got 20" in found
    assert problems({"seed": -1, "panel": {"preset": "three_phase_panel"}})[0].startswith(
        "seed: must be between 0 and")


def test_file_errors_carry_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        seed: 1
        panel:
          preset: three_phase_panel
        events:
          - type: voltage_dip
            at_s: 1
            duration_s: 0.1
            residual_pct: 140
    """))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(info.value.problems[0]) == (
        "events[0].residual_pct: must be between 0 and 100, got 140 (line 8)"
    )
    assert str(path) in str(info.value)


def test_overrides_merge_into_the_preset() -> None:
    scenario = parse_scenario({
        "panel": {
            "preset": "three_phase_panel",
            "sample_rate_hz": 8000,
            "mains": {"impedance": "none", "harmonics": [{"order": 5, "pct": 4}]},
            "adc": {"bits": 12, "sampling": "multiplexed"},
            "residual_channel": False,
        },
        "events": [{"type": "voltage_interruption", "at_s": 1, "duration_s": 2, "phases": ["A"]}],
    })
    p = scenario.panel
    assert p.sample_rate_hz == 8000
    assert p.mains.impedance is None
    assert not p.residual_channel
    assert [(h.order, h.pct) for h in p.mains.harmonics] == [(5, 4.0)]
    assert p.adc.bits == 12
    assert p.adc.sampling.value == "multiplexed"
    assert len(p.circuits) == 12  # kept from the preset
    (cut,) = scenario.disturbances
    assert isinstance(cut, VoltageChange)
    assert cut.type is DisturbanceType.VOLTAGE_INTERRUPTION
    assert cut.magnitude_pct == 0.0
    assert math.isclose(cut.duration_s, 2.0)
