"""Shared inputs of the configuration tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "gridguard.example.yaml"

_MINIMAL: dict[str, Any] = {
    "site": {"id": "demo"},
    "system": {"type": "three_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
    "source": {"type": "simulated", "simulated": {"scenario": "scenarios/demo.yaml"}},
    "channels": {
        "voltage": [
            {"id": "va", "phase": "A"},
            {"id": "vb", "phase": "B"},
            {"id": "vc", "phase": "C"},
        ],
        "current": [
            {"id": "i_kitchen", "phase": "A"},
            {"id": "i_hp_a", "phase": "A"},
            {"id": "i_hp_b", "phase": "B"},
            {"id": "i_hp_c", "phase": "C"},
        ],
    },
    "circuits": [
        {"id": "kitchen", "phases": ["A"], "current_channels": ["i_kitchen"],
         "breaker_rating_a": 16},
        {"id": "heat_pump", "phases": ["A", "B", "C"],
         "current_channels": ["i_hp_a", "i_hp_b", "i_hp_c"], "breaker_rating_a": 16},
    ],
}


@pytest.fixture
def minimal() -> dict[str, Any]:
    """A fresh copy of a small valid configuration (tests mutate it)."""
    return copy.deepcopy(_MINIMAL)
