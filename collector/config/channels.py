"""`channels`: every sampled input, its ADC input, sensor and calibration."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, model_validator

from collector.config.base import HexInt, PhaseName, Slug, StrictModel
from collector.config.errors import LocatedProblem, format_value, problems_error
from collector.config.sensors import AnySensor, CurrentSensor, VoltageSensor
from collector.model import Phase, Quantity


class AdcRef(StrictModel):
    """Which converter input a channel is wired to."""

    device: HexInt | None = Field(
        default=None,
        description="ADS1115 I2C address (0x48..), MCP3008 chip select, or PZEM Modbus "
        "address; may be omitted when the source has only one device.",
    )
    channel: int | None = Field(
        default=None, ge=0, le=7, description="Single-ended input number (AIN/CH)."
    )
    differential: tuple[int, int] | None = Field(
        default=None,
        description="Differential pair [positive, negative] of input numbers "
        "(ADS1115: [0,1], [0,3], [1,3], [2,3]; MCP3008: neighbouring pairs).",
    )

    @model_validator(mode="after")
    def _one_input(self) -> Self:
        problems = []
        if self.channel is not None and self.differential is not None:
            problems.append(LocatedProblem((), "give either channel or differential, not both"))
        if self.differential is not None:
            pos, neg = self.differential
            if pos == neg or not (0 <= pos <= 7 and 0 <= neg <= 7):
                problems.append(LocatedProblem(
                    ("differential",),
                    "must be two different input numbers 0..7",
                    format_value(list(self.differential)),
                ))
        if problems:
            raise problems_error(problems)
        return self

    @property
    def inputs(self) -> tuple[int, ...]:
        """ADC input pins this reference occupies."""
        if self.differential is not None:
            return self.differential
        return () if self.channel is None else (self.channel,)

    def describe(self) -> str:
        dev = "" if self.device is None else f"0x{self.device:02X}:"
        if self.differential is not None:
            return f"{dev}{self.differential[0]}-{self.differential[1]}"
        return f"{dev}{'' if self.channel is None else self.channel}".rstrip(":") or "-"


class GainPoint(StrictModel):
    reading: float = Field(
        gt=0, description="RMS the channel reported before this calibration [V or A]."
    )
    reference: float = Field(gt=0, description="RMS a reference meter showed [V or A].")

    @property
    def gain(self) -> float:
        return self.reference / self.reading


_CAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$")


def _check_cal_id(value: str) -> str:
    if not _CAL_ID.match(value):
        raise ValueError("must be 1..64 characters of letters, digits and _ . : + -")
    return value


class CalibrationConfig(StrictModel):
    """Correction after the sensor transfer: a file, or the values inline."""

    file: Path | None = Field(
        default=None, description="Calibration file written by `gridguard calibrate`."
    )
    id: Annotated[str, AfterValidator(_check_cal_id)] | None = Field(
        default=None,
        description="Calibration id recorded with every measurement (quality field).",
    )
    offset: float = Field(
        default=0.0,
        description="Subtracted after the sensor transfer, in the channel's unit [V or A].",
    )
    gain: float = Field(default=1.0, gt=0, description="Single-point gain factor [1].")
    gain_points: tuple[GainPoint, ...] = Field(
        default=(),
        description="Multi-point gain: (reading, reference) pairs, interpolated in "
        "amplitude; replaces `gain`.",
    )
    phase_deg: float = Field(
        default=0.0,
        ge=-30.0,
        le=30.0,
        description="Phase correction at the nominal frequency [°], positive = advance "
        "(CT phase lead, multiplexer skew).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        # compared with the defaults, not "was it written": a dumped config repeats them
        inline_set = {
            name for name in ("offset", "gain", "gain_points", "phase_deg")
            if getattr(self, name) != type(self).model_fields[name].default
        }
        if self.file is not None and inline_set:
            problems.append(LocatedProblem(
                (), "give either file or inline values, not both: " + ", ".join(sorted(inline_set))
            ))
        if self.gain_points and self.gain != 1.0:
            problems.append(LocatedProblem(
                ("gain",), "give either gain or gain_points, not both", format_value(self.gain)
            ))
        readings = [p.reading for p in self.gain_points]
        for k in range(1, len(readings)):
            if readings[k] <= readings[k - 1]:
                problems.append(LocatedProblem(
                    ("gain_points", k, "reading"),
                    f"must be larger than gain_points[{k - 1}].reading ({readings[k - 1]})",
                    format_value(readings[k]),
                ))
        if problems:
            raise problems_error(problems)
        return self


class Polarity(StrEnum):
    NORMAL = "normal"
    REVERSED = "reversed"


class _ChannelBase(StrictModel):
    id: Slug = Field(description="Channel id, unique across all channels.")
    phase: PhaseName = Field(description="Conductor: A/B/C (or L1/L2/L3), N, G.")
    adc: AdcRef | None = Field(
        default=None,
        description="ADC input (required for ads1115/mcp3008/pzem sources, ignored by "
        "simulated and replay).",
    )
    calibration: CalibrationConfig | None = Field(
        default=None, description="Calibration (file or inline values)."
    )
    polarity: Polarity = Field(
        default=Polarity.NORMAL,
        description="`reversed` when the clamp or transformer sits the wrong way round "
        "(flips the sign, so import stays import).",
    )

    @property
    def calibration_id(self) -> str | None:
        if self.calibration is None:
            return None
        if self.calibration.id is not None:
            return self.calibration.id
        return self.calibration.file.stem if self.calibration.file is not None else None


class VoltageChannel(_ChannelBase):
    sensor: VoltageSensor | None = Field(
        default=None,
        description="Voltage sensor: zmpt101b, divider or direct (required for ADC sources).",
    )

    @model_validator(mode="after")
    def _line_phase(self) -> Self:
        if self.phase not in (Phase.A, Phase.B, Phase.C):
            raise problems_error([LocatedProblem(
                ("phase",), "a voltage channel measures a line: A, B or C", repr(self.phase.value)
            )])
        return self

    @property
    def quantity(self) -> Quantity:
        return Quantity.VOLTAGE


class CurrentChannel(_ChannelBase):
    sensor: CurrentSensor | None = Field(
        default=None,
        description="Current sensor: acs712, sct013 or direct (required for ADC sources).",
    )

    @model_validator(mode="after")
    def _conductor_phase(self) -> Self:
        if self.phase is Phase.G:
            raise problems_error([LocatedProblem(
                ("phase",), "a current channel is on A, B, C or N; put earth leakage CTs "
                "under channels.residual", "'G'"
            )])
        return self

    @property
    def quantity(self) -> Quantity:
        return Quantity.CURRENT


class ResidualChannel(_ChannelBase):
    """A core-balance CT around all live conductors (+ neutral): earth leakage."""

    sensor: CurrentSensor | None = Field(
        default=None, description="Current sensor of the core-balance CT."
    )

    @model_validator(mode="before")
    @classmethod
    def _phase_default(cls, data: Any) -> Any:
        # a core-balance CT surrounds every conductor: its "phase" is the earth path
        if isinstance(data, dict) and "phase" not in data:
            return {**data, "phase": "G"}
        return data

    @model_validator(mode="after")
    def _earth_phase(self) -> Self:
        if self.phase not in (Phase.G, Phase.N):
            raise problems_error([LocatedProblem(
                ("phase",), "a residual channel is on G (default) or N", repr(self.phase.value)
            )])
        return self

    @property
    def quantity(self) -> Quantity:
        return Quantity.RESIDUAL_CURRENT


AnyChannel = VoltageChannel | CurrentChannel | ResidualChannel


class ChannelsConfig(StrictModel):
    voltage: tuple[VoltageChannel, ...] = Field(
        min_length=1, description="Voltage channels, at least one per line phase used."
    )
    current: tuple[CurrentChannel, ...] = Field(
        default=(), description="Current channels (CT clamps, Hall sensors)."
    )
    residual: tuple[ResidualChannel, ...] = Field(
        default=(), description="Residual-current channels (core-balance CT)."
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        problems = []
        seen: dict[str, str] = {}
        for kind in ("voltage", "current", "residual"):
            for k, ch in enumerate(getattr(self, kind)):
                here = f"channels.{kind}[{k}]"
                if ch.id in seen:
                    problems.append(LocatedProblem(
                        (kind, k, "id"), f"duplicate channel id, also {seen[ch.id]}", repr(ch.id)
                    ))
                else:
                    seen[ch.id] = here
        if problems:
            raise problems_error(problems)
        return self

    def all(self) -> tuple[tuple[str, int, AnyChannel], ...]:
        """(list name, index, channel) for every channel, in file order."""
        out: list[tuple[str, int, AnyChannel]] = []
        for kind in ("voltage", "current", "residual"):
            out += [(kind, k, ch) for k, ch in enumerate(getattr(self, kind))]
        return tuple(out)

    def by_id(self, channel_id: str) -> AnyChannel | None:
        return next((ch for _, _, ch in self.all() if ch.id == channel_id), None)

    def sensors(self) -> tuple[AnySensor | None, ...]:
        return tuple(ch.sensor for _, _, ch in self.all())
