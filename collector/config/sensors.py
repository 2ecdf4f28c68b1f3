"""Sensor transfer functions: from volts at the ADC pin to volts or amperes on the wire.

Every sensor gives ``physical = (v_pin - zero_v) * units_per_volt`` (before the
channel's calibration and polarity). Datasheet defaults are cited where they are
used; a calibration (see channels.py) corrects the individual part.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from collector.config.base import StrictModel
from collector.config.errors import LocatedProblem, problems_error


class Acs712Variant(StrEnum):
    A5 = "5a"
    A20 = "20a"
    A30 = "30a"


# Allegro ACS712 datasheet, characteristics at VCC = 5 V, TA = 25 °C:
# sensitivity 185 / 100 / 66 mV/A for the x05B / x20A / x30A parts, measuring
# range ±5 / ±20 / ±30 A (peak), zero-current output VCC/2.
def acs712_sensitivity_v_per_a(variant: Acs712Variant) -> float:
    return {Acs712Variant.A5: 0.185, Acs712Variant.A20: 0.100, Acs712Variant.A30: 0.066}[variant]


def acs712_range_a(variant: Acs712Variant) -> float:
    return {Acs712Variant.A5: 5.0, Acs712Variant.A20: 20.0, Acs712Variant.A30: 30.0}[variant]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class Acs712Sensor(StrictModel):
    """Allegro ACS712 Hall-effect current sensor (ratiometric to its 5 V supply)."""

    type: Literal["acs712"] = Field(description="Sensor kind.")
    variant: Acs712Variant = Field(description="Part range: 5a, 20a or 30a.")
    sensitivity_v_per_a: float = Field(
        gt=0,
        le=1.0,
        description="Output change per ampere [V/A]; default from the datasheet: "
        "0.185 (5a), 0.100 (20a), 0.066 (30a) at VCC = 5 V.",
    )
    zero_v: float = Field(
        default=2.5,
        ge=0,
        le=5.5,
        description="Output at zero current [V]: VCC/2 per the datasheet (2.5 V at 5 V).",
    )

    @model_validator(mode="before")
    @classmethod
    def _datasheet_sensitivity(cls, data: Any) -> Any:
        if isinstance(data, dict) and "sensitivity_v_per_a" not in data:
            variant = str(data.get("variant", "")).strip().lower()
            if variant in {v.value for v in Acs712Variant}:
                sens = acs712_sensitivity_v_per_a(Acs712Variant(variant))
                data = {**data, "variant": variant, "sensitivity_v_per_a": sens}
        elif isinstance(data, dict) and isinstance(data.get("variant"), str):
            data = {**data, "variant": data["variant"].strip().lower()}
        return data

    @property
    def units_per_volt(self) -> float:
        return 1.0 / self.sensitivity_v_per_a

    @property
    def rated_rms(self) -> float:
        """Largest sinusoidal RMS current inside the measuring range [A]."""
        return acs712_range_a(self.variant) / math.sqrt(2.0)


# YHDC SCT-013 family: voltage-output parts with a built-in burden give 1 V RMS at
# the rated current; the 000 part (sold as "100") is current-output, 100 A : 50 mA,
# i.e. 2000 turns, and needs an external burden resistor.
SCT013_VOLTAGE_OUTPUT_A = {
    "005": 5.0, "010": 10.0, "015": 15.0, "020": 20.0, "025": 25.0, "030": 30.0,
    "050": 50.0, "060": 60.0,
}
SCT013_CURRENT_OUTPUT = {"000": 100.0, "100": 100.0}
SCT013_TURNS = 2000


def _norm_sct_variant(value: Any) -> Any:
    # `variant: 30` from Python, or `030` read by a YAML 1.1 parser elsewhere as octal
    # 24: both are recognisable, the loader of this project keeps `030` a string.
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:03d}"
        if text in SCT013_VOLTAGE_OUTPUT_A or text in SCT013_CURRENT_OUTPUT:
            return text
        return value
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("SCT-013-").removeprefix("SCT013-")
        return text
    return value


class Sct013Sensor(StrictModel):
    """YHDC SCT-013 split-core current transformer."""

    type: Literal["sct013"] = Field(description="Sensor kind.")
    variant: str = Field(
        description="Part number suffix: 005, 010, 015, 020, 025, 030, 050, 060 "
        "(1 V at rated current, built-in burden) or 000/100 (100 A : 50 mA, needs "
        "burden_ohm). Quote it in YAML: '030'."
    )
    volts_per_amp: float = Field(
        gt=0,
        description="Output per ampere [V/A]: 1/rated for voltage-output parts, "
        "burden_ohm/turns for current-output parts (derived when omitted).",
    )
    burden_ohm: float | None = Field(
        default=None,
        gt=0,
        description="External burden resistor [Ω] (current-output parts only).",
    )
    turns: int = Field(
        default=SCT013_TURNS,
        gt=0,
        description="Secondary turns of current-output parts (2000 for 100 A : 50 mA).",
    )
    zero_v: float = Field(
        default=0.0,
        description="ADC voltage at zero current [V]: the mid-rail bias of a single-ended "
        "circuit (e.g. 1.65 V), 0 for a differential input.",
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_volts_per_amp(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "variant" in data:
            data["variant"] = _norm_sct_variant(data["variant"])
        variant = data.get("variant")
        problems = []
        if variant in SCT013_VOLTAGE_OUTPUT_A:
            if data.get("burden_ohm") is not None:
                problems.append(LocatedProblem(
                    ("burden_ohm",),
                    f"SCT-013-{variant} has a built-in burden; remove burden_ohm",
                    str(data["burden_ohm"]),
                ))
            data.setdefault("volts_per_amp", 1.0 / SCT013_VOLTAGE_OUTPUT_A[variant])
        elif variant in SCT013_CURRENT_OUTPUT:
            burden = _number(data.get("burden_ohm"))
            turns = _number(data.get("turns", SCT013_TURNS))
            if data.get("burden_ohm") is None:
                problems.append(LocatedProblem(
                    ("burden_ohm",),
                    f"is required for SCT-013-{variant} (current output, 50 mA at 100 A)",
                ))
            elif burden is not None and turns is not None and burden > 0 and turns > 0:
                derived = burden / turns
                given = _number(data.get("volts_per_amp"))
                if given is not None and not math.isclose(given, derived, rel_tol=1e-9):
                    problems.append(LocatedProblem(
                        ("volts_per_amp",),
                        f"contradicts burden_ohm/turns = {derived:.6g} V/A; give burden_ohm "
                        "only (correct the individual part with a calibration)",
                        str(data["volts_per_amp"]),
                    ))
                data["volts_per_amp"] = derived
        elif variant is not None:
            known = sorted(SCT013_VOLTAGE_OUTPUT_A) + sorted(SCT013_CURRENT_OUTPUT)
            problems.append(LocatedProblem(
                ("variant",),
                "must be one of " + ", ".join(known) + " (quote it in YAML: '030')",
                repr(variant),
            ))
        if problems:
            raise problems_error(problems)
        return data

    @property
    def units_per_volt(self) -> float:
        return 1.0 / self.volts_per_amp

    @property
    def rated_rms(self) -> float:
        """Rated primary RMS current of the part [A]."""
        if self.variant in SCT013_VOLTAGE_OUTPUT_A:
            return SCT013_VOLTAGE_OUTPUT_A[self.variant]
        return SCT013_CURRENT_OUTPUT[self.variant]


class Zmpt101bSensor(StrictModel):
    """ZMPT101B voltage transformer module (output gain set by its trimmer)."""

    type: Literal["zmpt101b"] = Field(description="Sensor kind.")
    ratio: float = Field(
        gt=0,
        le=10_000,
        description="Mains volts per volt at the ADC pin [V/V]; depends on the module's "
        "trimmer, so measure it (no universal default).",
    )
    zero_v: float = Field(
        description="Module output at zero voltage [V]: its bias, VCC/2 of the module "
        "supply (2.5 V at 5 V, 1.65 V at 3.3 V). Required: a wrong bias is a DC error.",
    )

    @property
    def units_per_volt(self) -> float:
        return self.ratio

    @property
    def rated_rms(self) -> float | None:
        return None


class DividerSensor(StrictModel):
    """Resistive divider (only behind an isolating transformer: never on bare mains)."""

    type: Literal["divider"] = Field(description="Sensor kind.")
    r_top_ohm: float = Field(gt=0, description="Resistor from the measured node to the pin [Ω].")
    r_bottom_ohm: float = Field(gt=0, description="Resistor from the pin to reference [Ω].")
    zero_v: float = Field(default=0.0, description="ADC voltage at zero input [V] (bias).")

    @property
    def units_per_volt(self) -> float:
        return (self.r_top_ohm + self.r_bottom_ohm) / self.r_bottom_ohm

    @property
    def rated_rms(self) -> float | None:
        return None


class DirectSensor(StrictModel):
    """A linear transfer given directly: physical units per volt at the pin."""

    type: Literal["direct"] = Field(description="Sensor kind.")
    scale: float = Field(
        gt=0, description="Physical units per ADC volt [V/V or A/V] (sign: see polarity)."
    )
    zero_v: float = Field(default=0.0, description="ADC voltage at zero input [V].")

    @property
    def units_per_volt(self) -> float:
        return self.scale

    @property
    def rated_rms(self) -> float | None:
        return None

    @model_validator(mode="after")
    def _finite(self) -> Self:
        if not math.isfinite(self.scale):
            raise problems_error([LocatedProblem(("scale",), "must be finite")])
        return self


VoltageSensor = Annotated[
    Zmpt101bSensor | DividerSensor | DirectSensor, Field(discriminator="type")
]
CurrentSensor = Annotated[Acs712Sensor | Sct013Sensor | DirectSensor, Field(discriminator="type")]
AnySensor = Acs712Sensor | Sct013Sensor | Zmpt101bSensor | DividerSensor | DirectSensor
