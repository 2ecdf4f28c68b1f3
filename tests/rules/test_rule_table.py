"""Rules from the config: thresholds in physical units, from the standards' numbers."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from typing import Any

import pytest

from collector.config.models import GridGuardConfig
from collector.model import Severity
from collector.rules.faults import SYSTEM_CIRCUIT, FaultType
from collector.rules.flux_rules import (
    EXAMPLE_CONFIG,
    flux_duration,
    flux_float,
    render_task,
    task_name,
    task_prefix,
    tasks_from_config,
)
from collector.rules.rule_table import Direction, Series, by_type, rules_from_config
from tests.rules.helpers import BASE_CONFIG, make_config


def _cfg(**changes: Any) -> GridGuardConfig:
    data: dict[str, Any] = copy.deepcopy(BASE_CONFIG)
    for key, value in changes.items():
        data[key] = value
    return GridGuardConfig.model_validate(data)


def _limits(fault: FaultType, cfg: GridGuardConfig | None = None) -> dict[str, Any]:
    rule = by_type(rules_from_config(cfg or _cfg()).rules, fault)
    return {lim.key: lim for lim in rule.limits}


def test_voltage_bands_follow_en50160_around_230_v() -> None:
    under = _limits(FaultType.UNDERVOLTAGE)
    over = _limits(FaultType.OVERVOLTAGE)
    for ch in ("va", "vb", "vc"):
        # EN 50160 §4.2.2: Un ± 10 % -> 207 V / 253 V; warnings at 94 / 106 %
        assert under[ch].critical == pytest.approx(207.0)
        assert under[ch].warning == pytest.approx(216.2)
        assert over[ch].critical == pytest.approx(253.0)
        assert over[ch].warning == pytest.approx(243.8)
    rules = rules_from_config(_cfg()).rules
    assert by_type(rules, FaultType.UNDERVOLTAGE).direction is Direction.BELOW
    assert by_type(rules, FaultType.OVERVOLTAGE).direction is Direction.ABOVE


def test_frequency_band_and_outer_limits() -> None:
    low = _limits(FaultType.UNDERFREQUENCY)[SYSTEM_CIRCUIT]
    high = _limits(FaultType.OVERFREQUENCY)[SYSTEM_CIRCUIT]
    # EN 50160 §4.2.1: 50 Hz ± 1 % (49.5-50.5), +4 % / -6 % always (47-52 Hz)
    assert (low.warning, low.critical) == pytest.approx((49.5, 47.0))
    assert (high.warning, high.critical) == pytest.approx((50.5, 52.0))
    rule = by_type(rules_from_config(_cfg()).rules, FaultType.UNDERFREQUENCY)
    assert rule.window_s == 10.0  # EN 50160: 10-s mean values
    assert rule.merged_phase == "ABC"


def test_an_explicit_band_beyond_the_outer_limit_leaves_one_level() -> None:
    cfg = _cfg(thresholds={"frequency": {"band_hz": [46.0, 53.0]}})
    assert _limits(FaultType.UNDERFREQUENCY, cfg)[SYSTEM_CIRCUIT].critical is None
    assert _limits(FaultType.OVERFREQUENCY, cfg)[SYSTEM_CIRCUIT].critical is None


def test_sixty_hertz_outer_limits() -> None:
    cfg = _cfg(system={"type": "three_phase", "nominal_voltage_v": 120,
                       "nominal_frequency_hz": 60})
    assert _limits(FaultType.UNDERFREQUENCY, cfg)[SYSTEM_CIRCUIT].critical == pytest.approx(56.4)
    assert _limits(FaultType.OVERFREQUENCY, cfg)[SYSTEM_CIRCUIT].critical == pytest.approx(62.4)
    assert _limits(FaultType.OVERVOLTAGE, cfg)["va"].critical == pytest.approx(132.0)


def test_overcurrent_from_breaker_ratings_and_critical_circuits() -> None:
    oc = _limits(FaultType.OVERCURRENT)
    assert (oc["kitchen"].warning, oc["kitchen"].critical) == pytest.approx((12.8, 16.0))
    assert (oc["fridge"].warning, oc["fridge"].critical) == pytest.approx((8.0, 10.0))
    assert oc["kitchen"].warning_severity is Severity.WARNING
    assert oc["fridge"].warning_severity is Severity.CRITICAL  # circuits[].critical
    assert oc["kitchen"].sustain_s == 1.0  # thresholds.current.overcurrent_min_duration_s
    rule = by_type(rules_from_config(_cfg()).rules, FaultType.OVERCURRENT)
    assert rule.series == tuple(Series(c) for c in
                                ("kitchen", "oven", "fridge", "heat_pump", "solar"))


def test_power_and_pf_read_the_circuit_total_record() -> None:
    rules = rules_from_config(_cfg()).rules
    assert by_type(rules, FaultType.POWER_LIMIT).series == (Series("kitchen", "A"),
                                                            Series("solar", "C"))
    pf = by_type(rules, FaultType.LOW_POWER_FACTOR)
    assert Series("heat_pump", "ABC") in pf.series
    gates = {lim.key: lim.gate for lim in pf.limits}
    assert gates["heat_pump"] == pytest.approx(0.1 * 16 * 230 * 3)
    assert gates["kitchen"] == pytest.approx(0.1 * 16 * 230)


def test_undercurrent_windows_in_minutes_of_the_day() -> None:
    uc = _limits(FaultType.UNDERCURRENT)
    assert set(uc) == {"oven", "fridge"}  # only circuits with expected_running
    assert uc["oven"].windows_min == ((23 * 60, 3 * 60 + 30),)
    assert uc["fridge"].windows_min == ()
    assert uc["fridge"].sustain_s == 600.0
    assert uc["fridge"].warning_severity is Severity.CRITICAL
    assert rules_from_config(_cfg()).context.timezone == "Europe/Berlin"


def test_optional_rules_follow_the_config() -> None:
    base = {r.type for r in rules_from_config(_cfg()).rules}
    assert base == set(FaultType)
    data = copy.deepcopy(BASE_CONFIG)
    data["thresholds"] = {}  # no demand limit, no current THD limit
    for c in data["circuits"]:
        c.pop("max_power_w", None)
        c.pop("expected_running", None)
    types = {r.type for r in rules_from_config(GridGuardConfig.model_validate(data)).rules}
    assert base - types == {FaultType.DEMAND, FaultType.CURRENT_THD, FaultType.POWER_LIMIT,
                            FaultType.UNDERCURRENT}


def test_demand_prefers_main_circuits() -> None:
    data = copy.deepcopy(BASE_CONFIG)
    data["channels"]["current"].append({"id": "i_main", "phase": "A"})
    data["circuits"].append({"id": "incomer", "kind": "main", "phases": ["A"],
                             "current_channels": ["i_main"], "breaker_rating_a": 63})
    rule = by_type(rules_from_config(GridGuardConfig.model_validate(data)).rules,
                   FaultType.DEMAND)
    assert rule.series == (Series("incomer", "A"),)
    plain = by_type(rules_from_config(_cfg()).rules, FaultType.DEMAND)
    assert len(plain.series) == 5  # every circuit, generation counting negative


def test_context_from_the_influx_section() -> None:
    ctx = rules_from_config(make_config("lab", "r", "e")).context
    assert (ctx.raw_bucket, ctx.events_bucket, ctx.site) == ("r", "e", "lab")
    assert ctx.intervals == ("150c", "180c")
    assert ctx.record_s == 3.0
    basic = rules_from_config(_cfg(influx={"write": {"interval": "basic"}})).context
    assert basic.intervals == ("basic",)
    assert basic.record_s == pytest.approx(0.2)


def test_flux_literals() -> None:
    assert flux_float(16) == "16.0"
    assert flux_float(243.8) == "243.8"
    assert flux_float(1e-5) == "1e-05"
    with pytest.raises(ValueError, match="finite"):
        flux_float(float("nan"))
    assert flux_duration(60) == "60s"
    assert flux_duration(0.2) == "200ms"
    with pytest.raises(ValueError, match="positive"):
        flux_duration(0)


def test_task_names_never_collide_between_sites() -> None:
    rule = by_type(rules_from_config(_cfg()).rules, FaultType.DEMAND)
    assert task_name("home", rule) == "gridguard-rule/home/demand"
    # "home" must not claim the tasks of "home-berlin"
    assert not task_name("home-berlin", rule).startswith(task_prefix("home"))


def test_rendered_task_carries_name_schedule_and_thresholds() -> None:
    tasks = {t.rule.type: t for t in tasks_from_config(make_config("lab", "raw", "events"))}
    oc = tasks[FaultType.OVERCURRENT]
    assert oc.name == "gridguard-rule/lab/overcurrent"
    assert 'option task = {name: "gridguard-rule/lab/overcurrent", every: 10s, offset: 5s}' \
        in oc.flux
    assert '{key: "kitchen", value: 16.0}' in oc.flux
    assert re.search(r'to\(bucket: "events", tagColumns: \["site", "circuit", "phase", '
                     r'"type", "severity"\]', oc.flux)
    thd = tasks[FaultType.VOLTAGE_THD]
    assert "every: 600s" in thd.flux
    assert "aggregateWindow(every: 600s, fn: quadraticMean" \
        in thd.flux


def test_render_refuses_a_rule_without_limits() -> None:
    rule_set = rules_from_config(_cfg())
    rule = by_type(rule_set.rules, FaultType.DEMAND)
    from dataclasses import replace

    with pytest.raises(ValueError, match="at least one"):
        render_task(replace(rule, limits=()), rule_set.context, "x")


def test_rule_files_match_the_example_config() -> None:
    proc = subprocess.run([sys.executable, "-m", "collector.rules.flux_rules", "--check"],
                          capture_output=True, text=True, check=False,
                          cwd=EXAMPLE_CONFIG.parents[1])
    assert proc.returncode == 0, (
        "influx/rules is stale; regenerate with `python -m collector.rules.flux_rules`:\n"
        + proc.stdout + proc.stderr)
