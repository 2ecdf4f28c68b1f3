"""`tariff`: prices for cost reports; optional, reloads live."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from collector.config.base import Slug, StrictModel, TimeOfDay
from collector.config.errors import LocatedProblem, problems_error


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


def _check_currency(value: str) -> str:
    if not re.match(r"^[A-Z]{3}$", value):
        raise ValueError("must be an ISO 4217 code like 'EUR', 'USD', 'GBP'")
    return value


class TimeOfUsePeriod(StrictModel):
    name: Slug = Field(description="Period name, e.g. peak, night.")
    start: TimeOfDay = Field(description="Start, site local time 'HH:MM'.")
    end: TimeOfDay = Field(description="End 'HH:MM' (exclusive); before start = over midnight.")
    days: tuple[Weekday, ...] = Field(
        default=tuple(Weekday), min_length=1, description="Days the period applies (mon..sun)."
    )
    import_price_per_kwh: float = Field(ge=0, description="Import price in this period.")
    export_price_per_kwh: float | None = Field(
        default=None, ge=0, description="Export price in this period (default: the flat one)."
    )

    def minutes(self) -> list[tuple[int, int]]:
        """Half-open [start, end) minute ranges within a day (split at midnight)."""
        s = self.start.hour * 60 + self.start.minute
        e = self.end.hour * 60 + self.end.minute
        if s == e:
            return [(0, 24 * 60)]
        return [(s, e)] if s < e else [(s, 24 * 60), (0, e)]


class TariffConfig(StrictModel):
    currency: Annotated[str, AfterValidator(_check_currency)] = Field(
        default="EUR", description="ISO 4217 currency code."
    )
    import_price_per_kwh: float = Field(ge=0, description="Flat import price per kWh.")
    export_price_per_kwh: float = Field(
        default=0.0, ge=0, description="Feed-in price per kWh exported."
    )
    demand_charge_per_kw: float = Field(
        default=0.0, ge=0, description="Charge per kW of the billing period's peak demand."
    )
    time_of_use: tuple[TimeOfUsePeriod, ...] = Field(
        default=(), description="Periods overriding the flat prices; must not overlap."
    )

    @model_validator(mode="after")
    def _no_overlap(self) -> Self:
        problems = []
        for j, b in enumerate(self.time_of_use):
            for i, a in enumerate(self.time_of_use[:j]):
                common = set(a.days) & set(b.days)
                hit = any(
                    s1 < e2 and s2 < e1 for s1, e1 in a.minutes() for s2, e2 in b.minutes()
                )
                if common and hit:
                    problems.append(LocatedProblem(
                        ("time_of_use", j), f"overlaps time_of_use[{i}] ({a.name})", repr(b.name)
                    ))
        if problems:
            raise problems_error(problems)
        return self
