"""Live-reloadable changes are told apart from changes that need a restart."""

from __future__ import annotations

import copy
from typing import Any

from collector.config import (
    LIVE_RELOADABLE_SECTIONS,
    RESTART_REQUIRED_SECTIONS,
    GridGuardConfig,
    changed_paths,
    diff_requires_restart,
    parse_config,
)


def test_sections_partition_the_config() -> None:
    assert set(LIVE_RELOADABLE_SECTIONS) == {"thresholds", "tariff"}
    assert set(LIVE_RELOADABLE_SECTIONS).isdisjoint(RESTART_REQUIRED_SECTIONS)
    assert set(LIVE_RELOADABLE_SECTIONS) | set(RESTART_REQUIRED_SECTIONS) == set(
        GridGuardConfig.model_fields)


def test_identical_configs_need_nothing(minimal: dict[str, Any]) -> None:
    assert changed_paths(parse_config(minimal), parse_config(copy.deepcopy(minimal))) == []


def test_thresholds_only_change_reloads_live(minimal: dict[str, Any]) -> None:
    old = parse_config(minimal)
    minimal["thresholds"] = {"voltage": {"dip_threshold_pct": 85}, "demand_limit_w": 9000}
    minimal["tariff"] = {"import_price_per_kwh": 0.3}
    new = parse_config(minimal)
    assert changed_paths(old, new) == [
        "thresholds.voltage.dip_threshold_pct", "thresholds.demand_limit_w", "tariff"]
    assert diff_requires_restart(old, new) == []


def test_channel_change_requires_restart(minimal: dict[str, Any]) -> None:
    old = parse_config(minimal)
    minimal["channels"]["current"][1]["polarity"] = "reversed"
    minimal["thresholds"] = {"power_factor_min": 0.9}
    new = parse_config(minimal)
    assert diff_requires_restart(old, new) == ["channels.current[1].polarity"]


def test_added_circuit_requires_restart(minimal: dict[str, Any]) -> None:
    old = parse_config(minimal)
    minimal["channels"]["current"].append({"id": "i_oven", "phase": "B"})
    minimal["circuits"].append({"id": "oven", "phases": ["B"], "current_channels": ["i_oven"],
                                "breaker_rating_a": 16})
    new = parse_config(minimal)
    assert diff_requires_restart(old, new) == ["channels.current[4]", "circuits[2]"]


def test_secret_change_is_detected_without_showing_it(minimal: dict[str, Any]) -> None:
    minimal["influx"] = {"token": "f0e1d2c3b4a5968778695a4b3c2d1e0f"}
    old = parse_config(minimal)
    minimal["influx"] = {"token": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}
    new = parse_config(minimal)
    assert diff_requires_restart(old, new) == ["influx.token.sha256"]
