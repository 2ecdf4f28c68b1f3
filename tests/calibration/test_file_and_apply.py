"""The calibration file format, resolving a channel's calibration, applying it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from collector.calibration.apply import (
    ChannelCalibration,
    apply_offset_gain,
    gain_at,
    phase_skew_s,
    points_from_pairs,
)
from collector.calibration.file_format import (
    CalibrationFile,
    CalibrationFileError,
    channel_calibration,
    parse_calibration,
    read_calibration,
    write_calibration,
)
from collector.calibration.resolve import calibration_for
from collector.config import parse_config

GOOD = {
    "gridguard_calibration": 1,
    "id": "cal-1",
    "created_utc": "2024-05-02T10:15:00Z",
    "nominal_frequency_hz": 50,
    "channels": {
        "i_k": {"quantity": "current", "unit": "A", "offset": 0.1, "gain_model": "points",
                "gain": 1.01, "phase_deg": 1.5, "phase_uncertainty_deg": 0.2,
                "gain_points": [{"reading": 1.0, "reference": 1.03},
                                {"reading": 10.0, "reference": 10.1}]},
        "v_a": {"quantity": "voltage", "unit": "V", "gain": 0.98},
    },
}


def test_file_round_trips_and_resolves_per_channel(tmp_path: Path) -> None:
    cal = parse_calibration(GOOD)
    path = tmp_path / "cal-1.yaml"
    write_calibration(cal, path)
    text = path.read_text()
    assert text.startswith("gridguard_calibration: 1\n")
    assert read_calibration(path) == cal
    cfg = parse_config({
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "simulated", "simulated": {"scenario": "x.yaml"}},
        "channels": {"voltage": [{"id": "v_a", "phase": "A", "calibration": {"file": str(path)}}],
                     "current": [{"id": "i_k", "phase": "A",
                                  "calibration": {"file": str(path)}}]},
        "circuits": [{"id": "k", "phases": ["A"], "current_channels": ["i_k"],
                      "breaker_rating_a": 16}],
    })
    cache: dict[Path, CalibrationFile] = {}
    i = calibration_for(cfg.channel("i_k"), cache=cache)
    v = calibration_for(cfg.channel("v_a"), cache=cache)
    assert len(cache) == 1  # one read for both channels
    assert (i.id, i.offset, i.phase_deg, i.phase_uncertainty_deg) == ("cal-1", 0.1, 1.5, 0.2)
    assert np.array(i.gain_points) == pytest.approx(np.array([[1.0, 1.03], [10.0, 1.01]]))
    assert (v.gain, v.gain_points, v.offset) == (0.98, (), 0.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gridguard_calibration": 2}, "format version 2 is not supported; this GridGuard "
                                       "reads version 1"),
        ({"id": "has space"}, "id: must be 1..64 characters"),
        ({"channels": {"i_k": {"quantity": "current", "unit": "A", "gian": 1.0}}},
         "channels.i_k.gian: Extra inputs are not permitted"),
        ({"channels": {"i_k": {"quantity": "current", "unit": "A", "gain": -1}}},
         "channels.i_k.gain: Input should be greater than 0, got -1"),
        ({"channels": {"i_k": {"quantity": "current", "unit": "A", "gain_model": "points"}}},
         "gain_model 'points' needs at least two gain_points"),
    ],
)
def test_bad_files_say_what_and_where(change: dict[str, object], message: str) -> None:
    with pytest.raises(CalibrationFileError, match=r"cal\.yaml: ") as exc:
        parse_calibration({**GOOD, **change}, source="cal.yaml")
    assert message in str(exc.value)


def test_not_a_calibration_file(tmp_path: Path) -> None:
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump({"site": {"id": "a"}}))
    with pytest.raises(CalibrationFileError, match="key 'gridguard_calibration' is missing"):
        read_calibration(p)
    with pytest.raises(CalibrationFileError, match="cannot read"):
        read_calibration(tmp_path / "missing.yaml")


def test_channel_missing_from_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_calibration(parse_calibration(GOOD), path)
    with pytest.raises(CalibrationFileError, match="no entry for channel 'v_b'; the file "
                       "calibrates i_k, v_a"):
        channel_calibration(parse_calibration(GOOD), "v_b", source=path)


def test_apply_offset_then_amplitude_dependent_gain() -> None:
    cal = ChannelCalibration(offset=0.5, gain_points=points_from_pairs([(1.0, 1.03),
                                                                         (10.0, 10.1)]))
    # between the points the gain is interpolated linearly in the reading
    assert gain_at(5.5, cal) == pytest.approx((1.03 + 1.01) / 2)
    # beyond them it is held, never extrapolated
    assert gain_at(100.0, cal) == pytest.approx(1.01)
    assert gain_at(0.1, cal) == pytest.approx(1.03)
    t = np.arange(1000) / 1000
    x = 0.5 + 5.5 * np.sqrt(2) * np.sin(2 * np.pi * 50 * t)
    y = apply_offset_gain(x, cal)
    assert float(np.sqrt(np.mean(y**2))) == pytest.approx(5.5 * 1.02, rel=1e-3)
    assert apply_offset_gain([1.5], ChannelCalibration(offset=0.5, gain=2.0)) == pytest.approx(
        [2.0])


def test_phase_lead_is_a_later_instant() -> None:
    # 1.8° at 50 Hz = 0.1 ms
    assert phase_skew_s(ChannelCalibration(phase_deg=1.8), 50.0) == pytest.approx(1e-4)


def test_calibration_values_are_checked() -> None:
    with pytest.raises(ValueError, match=r"gain: must be finite and > 0, got 0\.0"):
        ChannelCalibration(gain=0.0)
    with pytest.raises(ValueError, match="gain_points: readings must increase"):
        ChannelCalibration(gain_points=((2.0, 1.0), (1.0, 1.0)))
