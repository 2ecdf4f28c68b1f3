"""The calibration file: versioned YAML written by `gridguard calibrate`.

Calibration is data, not code. One file holds one calibration session (its ``id``
is recorded in the quality fields of every measurement it corrects) with an entry
per channel::

    gridguard_calibration: 1          # format version
    id: cal-20240502T1015Z
    created_utc: '2024-05-02T10:15:00Z'
    nominal_frequency_hz: 50
    reference_instrument: Fluke 87V (±0.7 % of reading)
    channels:
      i_kitchen:
        quantity: current
        unit: A
        offset: 0.0123                 # [A], subtracted after the sensor transfer
        offset_uncertainty: 0.0004     # [A], expanded k = 2
        noise_rms: 0.011               # [A], no-load noise floor
        gain_model: single             # single | points
        gain: 1.0132
        gain_points:                   # as measured: reading (after offset) vs reference
          - {reading: 4.95, reference: 5.02, residual_pct: 0.03}
        gain_uncertainty_pct: 0.45     # expanded k = 2
        phase_deg: 1.2                 # lead of the channel over the true current
        phase_uncertainty_deg: 0.15    # expanded k = 2

Unknown keys are errors (a typo must not silently drop a correction); a newer
format version is refused with a message saying so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collector.calibration.apply import ChannelCalibration, points_from_pairs

FORMAT_VERSION = 1
FORMAT_KEY = "gridguard_calibration"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$")


class CalibrationFileError(Exception):
    """A calibration file that cannot be used, with the file and the key at fault."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self) -> tuple[type[CalibrationFileError], tuple[Path, str]]:
        return (type(self), (self.path, self.message))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GainPointRecord(_Model):
    reading: float = Field(gt=0, description="Channel RMS after the offset [V or A].")
    reference: float = Field(gt=0, description="Reference meter RMS [V or A].")
    residual_pct: float | None = Field(
        default=None, description="(fitted gain * reading - reference) / reference [%]."
    )


class ChannelRecord(_Model):
    quantity: Literal["voltage", "current", "residual_current"]
    unit: Literal["V", "A"]
    offset: float = 0.0
    offset_uncertainty: float | None = Field(default=None, ge=0)
    noise_rms: float | None = Field(default=None, ge=0)
    gain_model: Literal["single", "points"] = "single"
    gain: float = Field(default=1.0, gt=0)
    gain_points: tuple[GainPointRecord, ...] = ()
    gain_uncertainty_pct: float | None = Field(default=None, ge=0)
    phase_deg: float = Field(default=0.0, gt=-90, lt=90)
    phase_uncertainty_deg: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not all(math.isfinite(v) for v in (self.offset, self.gain, self.phase_deg)):
            raise ValueError("offset, gain and phase_deg must be finite")
        if self.gain_model == "points" and len(self.gain_points) < 2:
            raise ValueError("gain_model 'points' needs at least two gain_points")
        readings = [p.reading for p in self.gain_points]
        if len(set(readings)) != len(readings):
            raise ValueError(f"gain_points: readings must differ, got {readings}")
        return self


class CalibrationFile(_Model):
    gridguard_calibration: int = Field(description="Format version.")
    id: str
    created_utc: str
    nominal_frequency_hz: float = Field(gt=0)
    reference_instrument: str | None = None
    notes: str | None = None
    channels: dict[str, ChannelRecord] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.gridguard_calibration != FORMAT_VERSION:
            raise ValueError(
                f"{FORMAT_KEY}: format version {self.gridguard_calibration} is not "
                f"supported; this GridGuard reads version {FORMAT_VERSION}"
            )
        if not _ID.match(self.id):
            raise ValueError(
                f"id: must be 1..64 characters of letters, digits and _ . : + -, got {self.id!r}"
            )
        return self


def _format_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        text = f"{loc}: {msg}" if loc else msg
        if loc and not isinstance(got, dict | list):
            text += f", got {got!r}"
        parts.append(text)
    return "; ".join(parts)


def parse_calibration(data: Any, *, source: Path | str = "<data>") -> CalibrationFile:
    """Validate calibration data (no I/O)."""
    if not isinstance(data, Mapping):
        raise CalibrationFileError(
            source, f"expected a mapping with {FORMAT_KEY}, id, channels; got {type(data).__name__}"
        )
    if FORMAT_KEY not in data:
        raise CalibrationFileError(
            source, f"not a GridGuard calibration file: the key {FORMAT_KEY!r} is missing"
        )
    try:
        return CalibrationFile.model_validate(dict(data))
    except ValidationError as exc:
        raise CalibrationFileError(source, _format_validation(exc)) from None


def read_calibration(path: Path) -> CalibrationFile:
    """Read and validate a calibration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalibrationFileError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalibrationFileError(path, f"not valid YAML: {exc}") from None
    return parse_calibration(data, source=path)


def write_calibration(cal: CalibrationFile, path: Path) -> None:
    """Write ``cal`` as YAML (atomically: a crash never leaves half a file)."""
    data = cal.model_dump(mode="json", exclude_none=True)
    ordered = {FORMAT_KEY: data.pop(FORMAT_KEY), **data}
    text = yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def channel_calibration(
    cal: CalibrationFile, channel_id: str, *, source: Path | str
) -> ChannelCalibration:
    """The correction of ``channel_id`` from a calibration file."""
    record = cal.channels.get(channel_id)
    if record is None:
        raise CalibrationFileError(
            source,
            f"channels: no entry for channel {channel_id!r}; the file calibrates "
            + ", ".join(sorted(cal.channels)),
        )
    points: tuple[tuple[float, float], ...] = ()
    if record.gain_model == "points":
        points = points_from_pairs([(p.reading, p.reference) for p in record.gain_points])
    return ChannelCalibration(
        id=cal.id,
        offset=record.offset,
        gain=record.gain,
        gain_points=points,
        phase_deg=record.phase_deg,
        gain_uncertainty_pct=record.gain_uncertainty_pct,
        phase_uncertainty_deg=record.phase_uncertainty_deg,
    )
