"""`thresholds`: event and alarm limits. This section reloads live (no restart).

Defaults come from the standards practitioners measure against:
IEC 61000-4-30 (dip 90 %, swell 110 %, interruption 5 %, hysteresis 2 % of the
declared voltage Udin), EN 50160 (supply voltage ±10 %, frequency ±1 % for 99.5 %
of a year, THD 8 %, negative-sequence unbalance 2 %), IEC 61008 (30 mA RCD: trip
within 40 ms at 5 IΔn).
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from collector.config.base import StrictModel
from collector.config.errors import LocatedProblem, format_value, problems_error


def _order(problems: list[LocatedProblem], low: tuple[str, float], high: tuple[str, float]) -> None:
    """Require low < high; report it on the lower key."""
    if not low[1] < high[1]:
        problems.append(LocatedProblem(
            (low[0],), f"must be below {high[0]} ({format_value(high[1])})", format_value(low[1])
        ))


class VoltageThresholds(StrictModel):
    dip_threshold_pct: float = Field(
        default=90.0, gt=0, lt=100, description="Dip starts below this [% of Udin]."
    )
    swell_threshold_pct: float = Field(
        default=110.0, gt=100, le=200, description="Swell starts above this [% of Udin]."
    )
    interruption_threshold_pct: float = Field(
        default=5.0, gt=0, lt=100, description="Interruption below this [% of Udin]."
    )
    hysteresis_pct: float = Field(
        default=2.0, ge=0, le=10, description="Event ends this far back inside [% of Udin]."
    )
    undervoltage_warning_pct: float = Field(
        default=94.0, gt=0, lt=100, description="Slow RMS below this warns [% of Udin]."
    )
    undervoltage_critical_pct: float = Field(
        default=90.0,
        gt=0,
        lt=100,
        description="Slow RMS below this is critical [% of Udin] (EN 50160: -10 %).",
    )
    overvoltage_warning_pct: float = Field(
        default=106.0, gt=100, le=200, description="Slow RMS above this warns [% of Udin]."
    )
    overvoltage_critical_pct: float = Field(
        default=110.0,
        gt=100,
        le=200,
        description="Slow RMS above this is critical [% of Udin] (EN 50160: +10 %).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        problems: list[LocatedProblem] = []
        _order(problems, ("interruption_threshold_pct", self.interruption_threshold_pct),
               ("dip_threshold_pct", self.dip_threshold_pct))
        _order(problems, ("undervoltage_critical_pct", self.undervoltage_critical_pct),
               ("undervoltage_warning_pct", self.undervoltage_warning_pct))
        _order(problems, ("overvoltage_warning_pct", self.overvoltage_warning_pct),
               ("overvoltage_critical_pct", self.overvoltage_critical_pct))
        # An event must be able to end: the hysteresis band has to fit between the
        # thresholds and 100 % (IEC 61000-4-30 5.4.2.1).
        room = min(
            100.0 - self.dip_threshold_pct,
            self.swell_threshold_pct - 100.0,
            self.dip_threshold_pct - self.interruption_threshold_pct,
        )
        if self.hysteresis_pct >= room:
            problems.append(LocatedProblem(
                ("hysteresis_pct",),
                f"must be smaller than the gap between thresholds ({format_value(room)} %)",
                format_value(self.hysteresis_pct),
            ))
        if problems:
            raise problems_error(problems)
        return self


class CurrentThresholds(StrictModel):
    warning_pct_of_rating: float = Field(
        default=80.0, gt=0, description="Warn above this RMS [% of breaker rating]."
    )
    overcurrent_pct_of_rating: float = Field(
        default=100.0, gt=0, description="Overcurrent above this RMS [% of breaker rating] ..."
    )
    overcurrent_min_duration_s: float = Field(
        default=1.0, gt=0, le=3600, description="... lasting at least this long [s]."
    )
    overcurrent_instant_pct: float = Field(
        default=400.0,
        gt=0,
        description="Half-cycle RMS above this is reported at once (short circuit) "
        "[% of breaker rating].",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        problems: list[LocatedProblem] = []
        _order(problems, ("warning_pct_of_rating", self.warning_pct_of_rating),
               ("overcurrent_pct_of_rating", self.overcurrent_pct_of_rating))
        _order(problems, ("overcurrent_pct_of_rating", self.overcurrent_pct_of_rating),
               ("overcurrent_instant_pct", self.overcurrent_instant_pct))
        if problems:
            raise problems_error(problems)
        return self


class FrequencyThresholds(StrictModel):
    deviation_pct: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="Band half-width [% of nominal] when band_hz is not given "
        "(EN 50160: ±1 %, i.e. 49.5..50.5 Hz).",
    )
    band_hz: tuple[float, float] | None = Field(
        default=None,
        description="Explicit [low, high] band [Hz]; overrides deviation_pct.",
    )
    averaging_s: float = Field(
        default=10.0, gt=0, le=600, description="Frequency averaging time [s] (EN 50160: 10 s)."
    )

    @model_validator(mode="after")
    def _band(self) -> Self:
        if self.band_hz is not None and not 0 < self.band_hz[0] < self.band_hz[1]:
            raise problems_error([LocatedProblem(
                ("band_hz",), "must be [low, high] with 0 < low < high",
                format_value(list(self.band_hz)),
            )])
        return self

    def band_for(self, nominal_hz: float) -> tuple[float, float]:
        """The frequency band [Hz] for a nominal frequency [Hz]."""
        if self.band_hz is not None:
            return self.band_hz
        half = nominal_hz * self.deviation_pct / 100.0
        return (nominal_hz - half, nominal_hz + half)


class Thresholds(StrictModel):
    voltage: VoltageThresholds = Field(
        default_factory=VoltageThresholds, description="Voltage events and bands."
    )
    current: CurrentThresholds = Field(
        default_factory=CurrentThresholds, description="Overcurrent, relative to breakers."
    )
    ground_fault_threshold_a: float = Field(
        default=0.030, gt=0, le=5.0, description="Residual current alarm [A] (30 mA RCD class)."
    )
    ground_fault_min_duration_s: float = Field(
        default=0.04, gt=0, le=10.0, description="... lasting at least this long [s]."
    )
    open_neutral_divergence_pct: float = Field(
        default=10.0,
        gt=0,
        le=100,
        description="Leg voltages diverging from nominal in opposite directions by more "
        "than this [% of Udin] ...",
    )
    open_neutral_min_duration_s: float = Field(
        default=0.5, gt=0, le=60, description="... for this long [s] is an open neutral."
    )
    frequency: FrequencyThresholds = Field(
        default_factory=FrequencyThresholds, description="Frequency band."
    )
    thd_voltage_max_pct: float = Field(
        default=8.0, gt=0, le=100, description="Voltage THD limit [%] (EN 50160: 8 %)."
    )
    thd_current_max_pct: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="Current THD limit [%]; null = no alarm (IEEE 519 limits apply at the "
        "point of common coupling, not per appliance).",
    )
    power_factor_min: float = Field(
        default=0.85, gt=0, le=1, description="Warn below this power factor [1]."
    )
    unbalance_max_pct: float = Field(
        default=2.0, gt=0, le=100, description="Negative-sequence voltage unbalance limit [%] "
        "(EN 50160: 2 %)."
    )
    demand_window_min: int = Field(
        default=15, ge=1, le=60, description="Demand averaging window [min]."
    )
    demand_limit_w: float | None = Field(
        default=None, gt=0, description="Site demand limit [W]; null = no demand alarm."
    )
