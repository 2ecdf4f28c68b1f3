"""IEEE 1159-2019 Table 2 categories (duration classes and typical magnitudes)."""

from __future__ import annotations

import pytest

from collector.events.ieee1159 import Variation, category, typical_magnitude


@pytest.mark.parametrize(
    ("variation", "duration_s", "f_hz", "expected"),
    [
        (Variation.SAG, 0.1, 50.0, "instantaneous sag"),
        (Variation.SAG, 0.599, 50.0, "instantaneous sag"),  # 29.95 cycles
        (Variation.SAG, 0.6, 50.0, "momentary sag"),  # 30 cycles at 50 Hz
        (Variation.SAG, 0.55, 60.0, "momentary sag"),  # 33 cycles at 60 Hz
        (Variation.SAG, 3.0, 50.0, "momentary sag"),
        (Variation.SAG, 3.01, 50.0, "temporary sag"),
        (Variation.SAG, 60.0, 50.0, "temporary sag"),
        (Variation.SAG, 61.0, 50.0, "undervoltage"),
        (Variation.SWELL, 0.2, 60.0, "instantaneous swell"),
        (Variation.SWELL, 2.0, 60.0, "momentary swell"),
        (Variation.SWELL, 10.0, 60.0, "temporary swell"),
        (Variation.SWELL, 120.0, 60.0, "overvoltage"),
        (Variation.INTERRUPTION, 0.02, 50.0, "momentary interruption"),
        (Variation.INTERRUPTION, 2.9, 50.0, "momentary interruption"),
        (Variation.INTERRUPTION, 30.0, 50.0, "temporary interruption"),
        (Variation.INTERRUPTION, 600.0, 50.0, "sustained interruption"),
    ],
)
def test_category_by_duration(variation: Variation, duration_s: float, f_hz: float,
                              expected: str) -> None:
    assert category(variation, duration_s, f_hz) == expected


@pytest.mark.parametrize(
    ("variation", "duration_s", "pu", "expected"),
    [
        (Variation.SWELL, 0.2, 1.7, True),  # instantaneous: 1.1-1.8 pu
        (Variation.SWELL, 2.0, 1.7, False),  # momentary: 1.1-1.4 pu
        (Variation.SWELL, 2.0, 1.3, True),
        (Variation.SWELL, 10.0, 1.3, False),  # temporary: 1.1-1.2 pu
        (Variation.SAG, 1.0, 0.05, False),  # below 0.1 pu is interruption territory
        (Variation.SAG, 100.0, 0.85, True),  # undervoltage: 0.8-0.9 pu
        (Variation.SAG, 100.0, 0.5, False),
    ],
)
def test_typical_magnitude(variation: Variation, duration_s: float, pu: float,
                           expected: bool) -> None:
    assert typical_magnitude(variation, duration_s, 50.0, pu) is expected


def test_invalid_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="duration_s: must be >= 0"):
        category(Variation.SAG, -1.0, 50.0)
    with pytest.raises(ValueError, match="f_hz: must be > 0"):
        category(Variation.SAG, 1.0, 0.0)
