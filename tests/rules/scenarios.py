"""Per fault rule: what is written before each forced run, and which fault records
that run must produce - nothing else.

Four runs per rule, one hour apart (run ``k`` at ``T0 + (k + 1) h``):

* run 0 stays inside the limits (near them, or beyond them too briefly to count);
* run 1 raises faults (two-level rules: one series critical, one warning);
* run 2 clears one series (``resolved``) and, for two-level rules, escalates the
  other (``resolved`` warning + ``active`` critical at the same time);
* run 3 keeps the escalated fault (no duplicate record) or resolves the rest.

Expected values come from the seeded numbers (closed forms, e.g. the sample
standard deviation of an alternating series); thresholds from the standards
(EN 50160: 230 V ± 10 % = 207 / 253 V, 50 Hz ± 1 %, 47 / 52 Hz, THD 8 %,
unbalance 2 %) and the test config (breaker ratings, limits).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from collector.model import Metrics
from collector.rules.faults import FaultType
from tests.rules.helpers import NS, RECORD_S, metrics, span

T0 = 1_735_689_600 * NS  # 2025-01-01T00:00:00Z; the site is in Europe/Berlin (UTC+1)


def run_time(k: int) -> int:
    return T0 + (k + 1) * 3600 * NS


@dataclass(frozen=True, slots=True)
class Expect:
    circuit: str
    phase: str
    severity: str
    state: str
    value: float
    threshold: float


Seed = Callable[[int, int], list[Metrics]]


@dataclass(frozen=True, slots=True)
class Case:
    type: FaultType
    unit: str
    seed: Seed  # (run index, run time [ns]) -> records before that run
    expect: dict[int, tuple[Expect, ...]]


def _alt(k: int, a: float, b: float) -> float:
    return a if k % 2 == 0 else b


def _qmean(a: float, b: float) -> float:
    return math.sqrt((a * a + b * b) / 2)


def _alt_std(a: float, b: float, n: int) -> float:
    # sample standard deviation of n values alternating a, b (n even)
    return abs(a - b) / 2 * math.sqrt(n / (n - 1))


def _window(t: int, seconds: float) -> list[int]:
    return span(t - round(seconds * NS), t)


# -- voltage -----------------------------------------------------------------------


def _voltage_seed(levels: dict[int, dict[str, tuple[float, float]]]) -> Seed:
    def seed(k: int, t: int) -> list[Metrics]:
        out = []
        for ch, phase in (("va", "A"), ("vb", "B"), ("vc", "C")):
            a, b = levels[k][ch]
            out += [metrics(tt, ch, phase, voltage_rms_v=_alt(i, a, b))
                    for i, tt in enumerate(_window(t, 60))]
        return out
    return seed


UNDERVOLTAGE = Case(
    FaultType.UNDERVOLTAGE, "V",
    _voltage_seed({
        0: {"va": (220, 220), "vb": (225, 225), "vc": (230, 230)},
        1: {"va": (190, 210), "vb": (214, 214), "vc": (230, 230)},
        2: {"va": (230, 230), "vb": (205, 205), "vc": (230, 230)},
        3: {"va": (230, 230), "vb": (205, 205), "vc": (230, 230)},
    }),
    {
        0: (),
        # quadratic mean of 190/210 (IEC 61000-4-30 aggregation), not 200
        1: (Expect("va", "A", "critical", "active", _qmean(190, 210), 207.0),
            Expect("vb", "B", "warning", "active", 214.0, 216.2)),
        2: (Expect("va", "A", "critical", "resolved", 230.0, 207.0),
            Expect("vb", "B", "critical", "active", 205.0, 207.0),
            Expect("vb", "B", "warning", "resolved", 205.0, 216.2)),
        3: (),
    },
)

OVERVOLTAGE = Case(
    FaultType.OVERVOLTAGE, "V",
    _voltage_seed({
        0: {"va": (240, 240), "vb": (230, 230), "vc": (243, 243)},
        1: {"va": (230, 230), "vb": (246, 246), "vc": (256, 256)},
        2: {"va": (230, 230), "vb": (255, 255), "vc": (230, 230)},
        3: {"va": (230, 230), "vb": (255, 255), "vc": (230, 230)},
    }),
    {
        0: (),
        1: (Expect("vb", "B", "warning", "active", 246.0, 243.8),
            Expect("vc", "C", "critical", "active", 256.0, 253.0)),
        2: (Expect("vb", "B", "critical", "active", 255.0, 253.0),
            Expect("vb", "B", "warning", "resolved", 255.0, 243.8),
            Expect("vc", "C", "critical", "resolved", 230.0, 253.0)),
        3: (),
    },
)

# 20 records per 1-min window; thresholds 1.5 % / 2.5 % of 230 V = 3.45 / 5.75 V
VOLTAGE_FLUCTUATION = Case(
    FaultType.VOLTAGE_FLUCTUATION, "V",
    _voltage_seed({
        0: {"va": (228, 232), "vb": (230, 230), "vc": (230, 230)},
        1: {"va": (220, 235), "vb": (225, 233), "vc": (230, 230)},
        2: {"va": (230, 230), "vb": (224, 236), "vc": (230, 230)},
        3: {"va": (230, 230), "vb": (224, 236), "vc": (230, 230)},
    }),
    {
        0: (),
        1: (Expect("va", "A", "critical", "active", _alt_std(220, 235, 20), 5.75),
            Expect("vb", "B", "warning", "active", _alt_std(225, 233, 20), 3.45)),
        2: (Expect("va", "A", "critical", "resolved", 0.0, 5.75),
            Expect("vb", "B", "critical", "active", _alt_std(224, 236, 20), 5.75),
            Expect("vb", "B", "warning", "resolved", _alt_std(224, 236, 20), 3.45)),
        3: (),
    },
)


def _frequency_seed(normal: dict[int, float], dip: dict[int, float]) -> Seed:
    # One 10-s window [t-30 s, t-20 s) at the dip value, the rest at normal: the
    # worst 10-s mean of the minute counts.
    def seed(k: int, t: int) -> list[Metrics]:
        out = []
        for tt in _window(t, 60):
            f = dip[k] if t - 30 * NS <= tt < t - 20 * NS else normal[k]
            out += [metrics(tt, ch, ph, frequency_hz=f)
                    for ch, ph in (("va", "A"), ("vb", "B"), ("vc", "C"))]
        return out
    return seed


UNDERFREQUENCY = Case(
    FaultType.UNDERFREQUENCY, "Hz",
    _frequency_seed({0: 50.0, 1: 50.0, 2: 46.8, 3: 50.0}, {0: 49.6, 1: 49.3, 2: 46.8, 3: 50.0}),
    {
        0: (),
        1: (Expect("system", "ABC", "warning", "active", 49.3, 49.5),),
        2: (Expect("system", "ABC", "critical", "active", 46.8, 47.0),
            Expect("system", "ABC", "warning", "resolved", 46.8, 49.5)),
        3: (Expect("system", "ABC", "critical", "resolved", 50.0, 47.0),),
    },
)

OVERFREQUENCY = Case(
    FaultType.OVERFREQUENCY, "Hz",
    _frequency_seed({0: 50.0, 1: 50.0, 2: 52.3, 3: 50.0}, {0: 50.4, 1: 50.6, 2: 52.3, 3: 50.0}),
    {
        0: (),
        1: (Expect("system", "ABC", "warning", "active", 50.6, 50.5),),
        2: (Expect("system", "ABC", "critical", "active", 52.3, 52.0),
            Expect("system", "ABC", "warning", "resolved", 52.3, 50.5)),
        3: (Expect("system", "ABC", "critical", "resolved", 50.0, 52.0),),
    },
)


def _voltage_thd_seed(k: int, t: int) -> list[Metrics]:
    va = {0: (7.9, 7.9), 1: (8.5, 9.5), 2: (9.0, 9.0), 3: (3.0, 3.0)}[k]
    out = []
    for i, tt in enumerate(_window(t, 600)):
        out.append(metrics(tt, "va", "A", voltage_thd_pct=_alt(i, *va)))
        out.append(metrics(tt, "vb", "B", voltage_thd_pct=3.0))
    return out


VOLTAGE_THD = Case(
    FaultType.VOLTAGE_THD, "%", _voltage_thd_seed,
    {
        0: (),
        1: (Expect("va", "A", "warning", "active", _qmean(8.5, 9.5), 8.0),),
        2: (),
        3: (Expect("va", "A", "warning", "resolved", 3.0, 8.0),),
    },
)


def _voltage_unbalance_seed(k: int, t: int) -> list[Metrics]:
    u2 = {0: (1.5, 1.5), 1: (2.4, 2.6), 2: (2.5, 2.5), 3: (1.0, 1.0)}[k]
    return [metrics(tt, "system", "ABC", voltage_unbalance_neg_pct=_alt(i, *u2))
            for i, tt in enumerate(_window(t, 600))]


VOLTAGE_UNBALANCE = Case(
    FaultType.VOLTAGE_UNBALANCE, "%", _voltage_unbalance_seed,
    {
        0: (),
        1: (Expect("system", "ABC", "warning", "active", _qmean(2.4, 2.6), 2.0),),
        2: (),
        3: (Expect("system", "ABC", "warning", "resolved", 1.0, 2.0),),
    },
)

# -- circuits ----------------------------------------------------------------------


def _overcurrent_seed(k: int, t: int) -> list[Metrics]:
    # values per circuit/phase for the records of [t - 30 s, t); kitchen peaks at
    # t - 6 s. Ratings: kitchen, oven 16 A (warning 12.8 A), fridge 10 A (8 A, critical).
    level = {
        0: {"kitchen": 10.0, "oven": 10.0, "fridge": 5.0, "hp": 5.0},
        1: {"kitchen": 17.0, "oven": 13.0, "fridge": 9.0, "hp": 5.0},
        2: {"kitchen": 5.0, "oven": 17.0, "fridge": 9.0, "hp": 5.0},
        3: {"kitchen": 5.0, "oven": 17.0, "fridge": 2.0, "hp": 5.0},
    }[k]
    out = []
    for tt in _window(t, 30):
        kitchen = 18.0 if (k == 1 and tt == t - 6 * NS) else level["kitchen"]
        out += [
            metrics(tt, "kitchen", "A", current_rms_a=kitchen),
            metrics(tt, "oven", "B", current_rms_a=level["oven"]),
            metrics(tt, "fridge", "B", current_rms_a=level["fridge"]),
        ]
        out += [metrics(tt, "heat_pump", p, current_rms_a=level["hp"]) for p in "ABC"]
    return out


OVERCURRENT = Case(
    FaultType.OVERCURRENT, "A", _overcurrent_seed,
    {
        0: (),
        1: (Expect("fridge", "B", "critical", "active", 9.0, 8.0),  # critical circuit
            Expect("kitchen", "A", "critical", "active", 18.0, 16.0),
            Expect("oven", "B", "warning", "active", 13.0, 12.8)),
        2: (Expect("kitchen", "A", "critical", "resolved", 5.0, 16.0),
            Expect("oven", "B", "critical", "active", 17.0, 16.0),
            Expect("oven", "B", "warning", "resolved", 17.0, 12.8)),
        3: (Expect("fridge", "B", "critical", "resolved", 2.0, 8.0),),
    },
)


def _power_limit_seed(k: int, t: int) -> list[Metrics]:
    out = []
    for tt in _window(t, 126):
        if k == 0:  # above the limit only for the last 30 s: not sustained for 60 s
            p = 3500.0 if tt >= t - 30 * NS else 1000.0
        elif k in (1, 2):
            p = 3600.0 if (k == 1 and tt == t - 9 * NS) else 3500.0
        else:
            p = 1000.0
        out.append(metrics(tt, "kitchen", "A", power_active_w=p))
        # the PV inverter exports (negative P) beyond its 4 kW limit in runs 1 and 2
        out.append(metrics(tt, "solar", "C", power_active_w=-4500.0 if k in (1, 2) else -1000.0))
    return out


POWER_LIMIT = Case(
    FaultType.POWER_LIMIT, "W", _power_limit_seed,
    {
        0: (),
        1: (Expect("kitchen", "A", "warning", "active", 3600.0, 3000.0),
            Expect("solar", "C", "warning", "active", 4500.0, 4000.0)),
        2: (),
        3: (Expect("kitchen", "A", "warning", "resolved", 1000.0, 3000.0),
            Expect("solar", "C", "warning", "resolved", 1000.0, 4000.0)),
    },
)


def _pf_seed(k: int, t: int) -> list[Metrics]:
    out = []
    for i, tt in enumerate(_window(t, 600)):
        if k in (1, 2):
            # (600 W, 1000 VA) and (2200 W, 3000 VA): ratio of means 0.7, mean of ratios 0.667
            p, s = ((600.0, 1000.0), (2200.0, 3000.0))[i % 2]
        else:
            p, s = 1900.0, 2000.0
        out += [
            metrics(tt, "kitchen", "A", power_active_w=p, power_apparent_va=s),
            # PF 0.1 but 100 VA is below 10 % of 16 A x 230 V: not judged
            metrics(tt, "oven", "B", power_active_w=10.0, power_apparent_va=100.0),
            metrics(tt, "heat_pump", "ABC", power_active_w=9000.0, power_apparent_va=10000.0),
        ]
    return out


LOW_POWER_FACTOR = Case(
    FaultType.LOW_POWER_FACTOR, "", _pf_seed,
    {
        0: (),
        1: (Expect("kitchen", "A", "warning", "active", 0.7, 0.85),),
        2: (),
        3: (Expect("kitchen", "A", "warning", "resolved", 0.95, 0.85),),
    },
)


def _current_thd_seed(k: int, t: int) -> list[Metrics]:
    thd = {0: (20.0, 20.0), 1: (34.0, 36.0), 2: (35.0, 35.0), 3: (10.0, 10.0)}[k]
    out = []
    for i, tt in enumerate(_window(t, 600)):
        out.append(metrics(tt, "kitchen", "A", current_thd_pct=_alt(i, *thd), current_rms_a=5.0))
        # 80 % THD at 0.5 A (below 10 % of 16 A): not judged
        out.append(metrics(tt, "oven", "B", current_thd_pct=80.0, current_rms_a=0.5))
    return out


CURRENT_THD = Case(
    FaultType.CURRENT_THD, "%", _current_thd_seed,
    {
        0: (),
        1: (Expect("kitchen", "A", "warning", "active", _qmean(34.0, 36.0), 30.0),),
        2: (),
        3: (Expect("kitchen", "A", "warning", "resolved", 10.0, 30.0),),
    },
)


def _current_unbalance_seed(k: int, t: int) -> list[Metrics]:
    # (I2/I1 %, S of the total [VA]); the gate is 10 % of 16 A x 230 V x 3 = 1104 VA
    u2, s = {0: (15.0, 500.0), 1: (15.0, 5000.0), 2: (15.0, 5000.0), 3: (3.0, 5000.0)}[k]
    return [metrics(tt, "heat_pump", "ABC", current_unbalance_neg_pct=u2, power_apparent_va=s)
            for tt in _window(t, 600)]


CURRENT_UNBALANCE = Case(
    FaultType.CURRENT_UNBALANCE, "%", _current_unbalance_seed,
    {
        0: (),
        1: (Expect("heat_pump", "ABC", "warning", "active", 15.0, 10.0),),
        2: (),
        3: (Expect("heat_pump", "ABC", "warning", "resolved", 3.0, 10.0),),
    },
)


def _undercurrent_seed(k: int, t: int) -> list[Metrics]:
    out = []
    for tt in _window(t, 663 + RECORD_S):
        # run 0: low for the last 300 s only, not the 600 s the fridge needs
        fridge = (0.1 if tt >= t - 300 * NS else 1.0) if k == 0 else {1: 0.1, 2: 0.1, 3: 1.0}[k]
        # The oven must run 23:00-03:30 local time (Berlin, UTC+1): runs 0 and 1
        # (02:00, 03:00 local) fall inside that window, runs 2 and 3 outside.
        oven = 1.0 if k == 0 else 0.0
        out += [metrics(tt, "fridge", "B", current_rms_a=fridge),
                metrics(tt, "oven", "B", current_rms_a=oven)]
    return out


UNDERCURRENT = Case(
    FaultType.UNDERCURRENT, "A", _undercurrent_seed,
    {
        0: (),
        1: (Expect("fridge", "B", "critical", "active", 0.1, 0.3),
            Expect("oven", "B", "warning", "active", 0.0, 0.5)),
        # outside its window the oven rule no longer applies: resolved
        2: (Expect("oven", "B", "warning", "resolved", 0.0, 0.5),),
        3: (Expect("fridge", "B", "critical", "resolved", 1.0, 0.3),),
    },
)


def _demand_seed(k: int, t: int) -> list[Metrics]:
    out = []
    for i, tt in enumerate(_window(t, 900)):
        hp = 6000.0 if k == 0 else _alt(i, 7000.0, 9000.0)
        out += [metrics(tt, "kitchen", "A", power_active_w=3000.0),
                metrics(tt, "heat_pump", "ABC", power_active_w=hp)]
        if k == 3:  # the PV inverter exports 2 kW: net demand 9 kW
            out.append(metrics(tt, "solar", "C", power_active_w=-2000.0))
    return out


DEMAND = Case(
    FaultType.DEMAND, "W", _demand_seed,
    {
        0: (),
        1: (Expect("system", "ABC", "warning", "active", 11000.0, 10000.0),),
        2: (),
        3: (Expect("system", "ABC", "warning", "resolved", 9000.0, 10000.0),),
    },
)

CASES: tuple[Case, ...] = (
    UNDERVOLTAGE, OVERVOLTAGE, VOLTAGE_FLUCTUATION, UNDERFREQUENCY, OVERFREQUENCY,
    VOLTAGE_THD, VOLTAGE_UNBALANCE, OVERCURRENT, POWER_LIMIT, LOW_POWER_FACTOR, CURRENT_THD,
    CURRENT_UNBALANCE, UNDERCURRENT, DEMAND,
)
RUNS = (0, 1, 2, 3)
