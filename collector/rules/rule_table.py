"""Which fault rules a configuration asks for, with their thresholds in physical units.

One source of truth: the config's ``thresholds`` and ``circuits`` sections. Every
percentage is turned into volts, amperes, watts or hertz here, so the Flux tasks
compare plain numbers and a fault record's ``threshold`` is directly readable.

Defaults and the standards behind them (docs/faults.md has the full table):

* voltage bands: EN 50160 §4.2.2 (Un ± 10 % for 95 % of 10-min means); the
  warning band (94 / 106 %) is the config's, an early warning inside it;
* frequency: EN 50160 §4.2.1 (50 Hz ± 1 % for 99.5 % of a year, 10-s means;
  +4 % / -6 % at all times) - the config band warns, the outer band is critical;
* voltage THD 8 % and negative-sequence unbalance 2 %: EN 50160 §4.2.4 / §4.2.5,
  10-min values aggregated as IEC 61000-4-30 §4.5 does (quadratic mean);
* overcurrent: % of the breaker rating In (IEC 60898-1 breakers carry In
  indefinitely; the warning at 80 % is the usual continuous-load margin);
* demand: the site limit over a sliding 15-min window (utility demand metering).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from collector.model import Severity
from collector.nomenclature import Measurement
from collector.rules.faults import SYSTEM_CIRCUIT, FaultType

# Aggregation windows and hold times of rules whose timing the config does not set.
VOLTAGE_WINDOW_S = 60
"""Slow voltage deviations: quadratic mean over 1 min (IEC 61000-4-30 aggregates by
quadratic mean; EN 50160 assesses 10-min values, too slow for an alarm)."""
PQ_WINDOW_S = 600
"""THD, unbalance and power factor: 10-min values, as EN 50160 assesses them."""
POWER_SUSTAIN_S = 60.0
"""Power above a circuit's max_power_w must last this long: kettles and motor starts
are short."""
FLUCTUATION_WINDOW_S = 60
FLUCTUATION_WARNING_PCT = 1.5
FLUCTUATION_CRITICAL_PCT = 2.5
"""Standard deviation of the short-interval RMS voltage over 1 min [% of Udin]. A
single step of dU in mid-window gives a deviation of dU/2, so 1.5 % flags steps of
3 % (the lowest rapid-voltage-change threshold IEC 61000-4-30 §5.11 suggests) and
2.5 % steps of 5 % (EN 50160 §4.3.3: rapid changes generally stay below 5 %)."""
FREQUENCY_CRITICAL_LOW_PCT = 6.0
FREQUENCY_CRITICAL_HIGH_PCT = 4.0
"""EN 50160 §4.2.1, interconnected systems: 50 Hz +4 % / -6 % during 100 % of the time."""
CURRENT_UNBALANCE_MAX_PCT = 10.0
"""Negative-sequence current unbalance of a three-phase load; motor protection relays
commonly alarm near 10 % (NEMA MG 1 §14.36: 1 % voltage unbalance gives 6-10 %
current unbalance). Not in the config yet."""
LOAD_GATE_FRACTION = 0.10
"""Power factor, current THD and current unbalance are judged only while the circuit
carries at least this share of its rating: ratios of a near-idle circuit are noise."""
DEMAND_EVERY_S = 60
FAULT_LOOKBACK_DAYS = 30
"""How far back a task looks for the last state of its faults. A fault active for
longer is written again (a monthly reminder) and still resolves normally."""

RECORD_S = {"basic": 0.2, "150c": 3.0}
"""Duration of one stored record per ``influx.write.interval`` [s]: 10 cycles at
50 Hz / 12 at 60 Hz, or 150 / 180 cycles."""
INTERVAL_TAGS = {"basic": ("basic",), "150c": ("150c", "180c")}


class Direction(StrEnum):
    """Which side of the threshold is the fault."""

    ABOVE = "above"
    BELOW = "below"


class Aggregate(StrEnum):
    """How records are summarised per window before comparison."""

    NONE = "none"  # each record on its own (sustained rules)
    MEAN = "mean"
    QUADRATIC_MEAN = "quadratic_mean"  # IEC 61000-4-30 §4.5 aggregation
    STDDEV = "stddev"


class Input(StrEnum):
    """How a rule's values are derived from the stored records."""

    FIELD = "field"  # one field of the selected series
    MERGED = "merged"  # one field of several series merged into one site series
    POWER_FACTOR = "power_factor"  # |mean P| / mean S per window, gated by S
    GATED = "gated"  # one field, kept only where a second field reaches the gate
    DEMAND = "demand"  # sum over circuits of the mean P over the window


@dataclass(frozen=True, slots=True)
class Series:
    """A stored series: ``circuit`` tag, and ``phase`` tag (None: every phase)."""

    circuit: str
    phase: str | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    """Thresholds for the faults of one ``circuit`` tag value.

    Attributes
    ----------
    key : str
        ``circuit`` tag of the fault (circuit id, voltage channel id or ``system``).
    warning : float
        Level-1 threshold [rule unit].
    critical : float | None
        Level-2 threshold [rule unit]; None for single-level rules.
    warning_severity : Severity
        Severity of level 1: ``critical`` for circuits marked critical.
    sustain_s : float
        The condition must hold this long [s] (0: one record or window suffices).
    gate : float | None
        Minimum of the gate quantity [VA or A] for a window to count.
    windows_min : tuple[tuple[int, int], ...]
        Minutes of the local day [start, end) when the rule applies (end <= start
        wraps over midnight); empty: always.
    """

    key: str
    warning: float
    critical: float | None = None
    warning_severity: Severity = Severity.WARNING
    sustain_s: float = 0.0
    gate: float | None = None
    windows_min: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One fault rule: what is read, how it is summarised, what it is compared with."""

    type: FaultType
    title: str
    unit: str
    direction: Direction
    input: Input
    measurement: str
    field: str
    series: tuple[Series, ...]
    limits: tuple[Limit, ...]
    aggregate: Aggregate = Aggregate.NONE
    window_s: float = 0.0
    every_s: int = 60
    offset_s: int = 15
    gate_measurement: str | None = None
    gate_field: str | None = None
    merged_phase: str | None = None  # phase tag of a merged (site) series
    absolute: bool = False  # compare |value| (power limits of generation circuits)
    basis: str = ""  # standard or reasoning behind the default, for the docs

    @property
    def has_critical(self) -> bool:
        return any(lim.critical is not None for lim in self.limits)

    @property
    def sustained(self) -> bool:
        return any(lim.sustain_s > 0 for lim in self.limits)


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Where a site's data is and how it is stored."""

    site: str
    raw_bucket: str
    events_bucket: str
    intervals: tuple[str, ...]
    record_s: float
    timezone: str = "UTC"
    lookback_days: int = FAULT_LOOKBACK_DAYS


@dataclass(frozen=True, slots=True)
class RuleSet:
    context: RuleContext
    rules: tuple[Rule, ...]


def _every_for(window_s: float) -> int:
    # A task period that is a whole number of windows, at least a minute: each run
    # then judges complete windows only.
    return max(60, int(window_s)) if window_s >= 60 else 60


def _offset_for(every_s: int) -> int:
    # Records are stamped with their start and written when they end (~3 s later),
    # then batched for up to 1 s: 5 s covers a 150-cycle record; longer periods
    # get more slack because a late minute costs them a whole run.
    if every_s <= 10:
        return 5
    if every_s <= 60:
        return 15
    return 30


def _phase_of(cfg: Any, channel_id: str) -> str:
    return str(cfg.channel(channel_id).phase)


def circuit_total_phase(cfg: Any, circuit: Any) -> str:
    """``phase`` tag of a circuit's total record (its only record when single-phase).

    Mirrors the metrics engine: the current channels' phases joined in order.
    """
    return "".join(_phase_of(cfg, cid) for cid in circuit.current_channels)


def site_phases(cfg: Any) -> str:
    """Line phases of the voltage channels, joined (``ABC``, ``AB``, ``A``)."""
    phases = sorted({str(ch.phase) for ch in cfg.channels.voltage})
    return "".join(phases)


def _minutes(t: Any) -> int:
    return int(t.hour) * 60 + int(t.minute)


def _voltage_rules(cfg: Any, v: Any, unom: float) -> list[Rule]:
    series = tuple(Series(ch.id, str(ch.phase)) for ch in cfg.channels.voltage)
    keys = [s.circuit for s in series]
    base = Rule(
        FaultType.UNDERVOLTAGE, "1-min RMS voltage below the band", unit="V",
        direction=Direction.BELOW, input=Input.FIELD,
        measurement=Measurement.ELECTRICAL.value, field="voltage_rms_v", series=series,
        limits=tuple(Limit(k, unom * v.undervoltage_warning_pct / 100.0,
                           unom * v.undervoltage_critical_pct / 100.0) for k in keys),
        aggregate=Aggregate.QUADRATIC_MEAN, window_s=VOLTAGE_WINDOW_S,
        every_s=_every_for(VOLTAGE_WINDOW_S), offset_s=_offset_for(60),
        basis="EN 50160 §4.2.2: Un - 10 %",
    )
    over = replace(
        base, type=FaultType.OVERVOLTAGE, title="1-min RMS voltage above the band",
        direction=Direction.ABOVE, basis="EN 50160 §4.2.2: Un + 10 %",
        limits=tuple(Limit(k, unom * v.overvoltage_warning_pct / 100.0,
                           unom * v.overvoltage_critical_pct / 100.0) for k in keys),
    )
    fluctuation = replace(
        over, type=FaultType.VOLTAGE_FLUCTUATION,
        title="standard deviation of the RMS voltage over 1 min",
        aggregate=Aggregate.STDDEV, window_s=FLUCTUATION_WINDOW_S,
        basis="IEC 61000-4-30 §5.11 / EN 50160 §4.3.3 rapid voltage changes (3-5 %)",
        limits=tuple(Limit(k, unom * FLUCTUATION_WARNING_PCT / 100.0,
                           unom * FLUCTUATION_CRITICAL_PCT / 100.0) for k in keys),
    )
    return [base, over, fluctuation]


def _frequency_rules(cfg: Any, unom_hz: float) -> list[Rule]:
    th = cfg.thresholds.frequency
    low, high = cfg.frequency_band_hz()
    crit_low = unom_hz * (1 - FREQUENCY_CRITICAL_LOW_PCT / 100.0)
    crit_high = unom_hz * (1 + FREQUENCY_CRITICAL_HIGH_PCT / 100.0)
    window = float(th.averaging_s)
    under = Rule(
        FaultType.UNDERFREQUENCY, f"{window:g}-s mean frequency below the band", unit="Hz",
        direction=Direction.BELOW, input=Input.MERGED,
        measurement=Measurement.ELECTRICAL.value, field="frequency_hz",
        series=tuple(Series(ch.id, str(ch.phase)) for ch in cfg.channels.voltage),
        # An explicit band may already reach past the outer limit: single level then.
        limits=(Limit(SYSTEM_CIRCUIT, low, crit_low if crit_low < low else None),),
        aggregate=Aggregate.MEAN, window_s=window, every_s=_every_for(window),
        offset_s=_offset_for(_every_for(window)), merged_phase=site_phases(cfg),
        basis="EN 50160 §4.2.1: 50 Hz ± 1 % (99.5 %), -6 % always",
    )
    over = replace(
        under, type=FaultType.OVERFREQUENCY, title=f"{window:g}-s mean frequency above the band",
        direction=Direction.ABOVE, basis="EN 50160 §4.2.1: 50 Hz ± 1 % (99.5 %), +4 % always",
        limits=(Limit(SYSTEM_CIRCUIT, high, crit_high if crit_high > high else None),),
    )
    return [under, over]


def _severity(circuit: Any) -> Severity:
    return Severity.CRITICAL if circuit.critical else Severity.WARNING


def _circuit_rules(cfg: Any, unom: float) -> list[Rule]:
    t = cfg.thresholds
    e = Measurement.ELECTRICAL.value
    rules: list[Rule] = []
    circuits = tuple(cfg.circuits)
    every_oc = 10
    rules.append(Rule(
        FaultType.OVERCURRENT, "RMS current above the breaker rating, sustained", unit="A",
        direction=Direction.ABOVE, input=Input.FIELD, measurement=e, field="current_rms_a",
        series=tuple(Series(c.id) for c in circuits),
        limits=tuple(Limit(c.id, c.breaker_rating_a * t.current.warning_pct_of_rating / 100.0,
                           c.breaker_rating_a * t.current.overcurrent_pct_of_rating / 100.0,
                           _severity(c), sustain_s=t.current.overcurrent_min_duration_s)
                     for c in circuits),
        every_s=every_oc, offset_s=_offset_for(every_oc),
        basis="% of the breaker rating In (IEC 60898-1 / 60947-2)",
    ))
    limited = tuple(c for c in circuits if c.max_power_w is not None)
    if limited:
        rules.append(Rule(
            FaultType.POWER_LIMIT, "|active power| above the circuit's max_power_w, sustained",
            unit="W", direction=Direction.ABOVE, input=Input.FIELD, measurement=e,
            field="power_active_w",
            series=tuple(Series(c.id, circuit_total_phase(cfg, c)) for c in limited),
            limits=tuple(Limit(c.id, float(c.max_power_w), None, _severity(c),
                               sustain_s=POWER_SUSTAIN_S) for c in limited),
            offset_s=_offset_for(60), absolute=True,
            basis="circuits[].max_power_w (installer's limit; export counts for generation)",
        ))
    pq_every = _every_for(PQ_WINDOW_S)
    rules.append(Rule(
        FaultType.LOW_POWER_FACTOR, "10-min power factor |mean P| / mean S below the minimum",
        unit="", direction=Direction.BELOW, input=Input.POWER_FACTOR, measurement=e,
        field="power_factor",
        series=tuple(Series(c.id, circuit_total_phase(cfg, c)) for c in circuits),
        limits=tuple(Limit(c.id, t.power_factor_min, None, _severity(c),
                           gate=LOAD_GATE_FRACTION * c.breaker_rating_a * unom
                           * len(c.current_channels))
                     for c in circuits),
        aggregate=Aggregate.MEAN, window_s=PQ_WINDOW_S, every_s=pq_every,
        offset_s=_offset_for(pq_every), gate_measurement=e, gate_field="power_apparent_va",
        basis="thresholds.power_factor_min (tariff penalties commonly below 0.85-0.9)",
    ))
    if t.thd_current_max_pct is not None:
        rules.append(Rule(
            FaultType.CURRENT_THD, "10-min current THD above the limit", unit="%",
            direction=Direction.ABOVE, input=Input.GATED, measurement=e, field="current_thd_pct",
            series=tuple(Series(c.id) for c in circuits),
            limits=tuple(Limit(c.id, float(t.thd_current_max_pct), None, _severity(c),
                               gate=LOAD_GATE_FRACTION * c.breaker_rating_a)
                         for c in circuits),
            aggregate=Aggregate.QUADRATIC_MEAN, window_s=PQ_WINDOW_S, every_s=pq_every,
            offset_s=_offset_for(pq_every), gate_measurement=e, gate_field="current_rms_a",
            basis="thresholds.thd_current_max_pct (IEEE 519 applies at the PCC)",
        ))
    three = tuple(c for c in circuits if len(c.current_channels) == 3
                  and {_phase_of(cfg, i) for i in c.current_channels} == {"A", "B", "C"})
    if three:
        rules.append(Rule(
            FaultType.CURRENT_UNBALANCE, "10-min negative-sequence current unbalance above the "
            "limit", unit="%", direction=Direction.ABOVE, input=Input.GATED,
            measurement=Measurement.POLYPHASE.value, field="current_unbalance_neg_pct",
            series=tuple(Series(c.id, circuit_total_phase(cfg, c)) for c in three),
            limits=tuple(Limit(c.id, CURRENT_UNBALANCE_MAX_PCT, None, _severity(c),
                               gate=LOAD_GATE_FRACTION * c.breaker_rating_a * unom * 3)
                         for c in three),
            aggregate=Aggregate.QUADRATIC_MEAN, window_s=PQ_WINDOW_S, every_s=pq_every,
            offset_s=_offset_for(pq_every), gate_measurement=e, gate_field="power_apparent_va",
            basis="motor practice ~10 % (NEMA MG 1 §14.36)",
        ))
    running = tuple(c for c in circuits if c.expected_running is not None)
    if running:
        rules.append(Rule(
            FaultType.UNDERCURRENT, "RMS current below expected_running.min_current_a, "
            "sustained (equipment failure)", unit="A", direction=Direction.BELOW,
            input=Input.FIELD, measurement=e, field="current_rms_a",
            series=tuple(Series(c.id) for c in running),
            limits=tuple(Limit(
                c.id, float(c.expected_running.min_current_a), None, _severity(c),
                sustain_s=float(c.expected_running.min_duration_s),
                windows_min=tuple((_minutes(w.start), _minutes(w.end))
                                  for w in c.expected_running.windows),
            ) for c in running),
            offset_s=_offset_for(60), basis="circuits[].expected_running",
        ))
    return rules


def _demand_rule(cfg: Any) -> Rule | None:
    t = cfg.thresholds
    if t.demand_limit_w is None:
        return None
    circuits = tuple(cfg.circuits)
    mains = tuple(c for c in circuits if str(c.kind) == "main")
    # With an incomer CT its reading is the site; otherwise the circuits add up to
    # the net demand (generation counts negative, as P is signed).
    chosen = mains or circuits
    window = float(t.demand_window_min * 60)
    return Rule(
        FaultType.DEMAND, f"{t.demand_window_min}-min sliding mean of the site's active power "
        "above the demand limit", unit="W", direction=Direction.ABOVE, input=Input.DEMAND,
        measurement=Measurement.ELECTRICAL.value, field="power_active_w",
        series=tuple(Series(c.id, circuit_total_phase(cfg, c)) for c in chosen),
        limits=(Limit(SYSTEM_CIRCUIT, float(t.demand_limit_w)),),
        aggregate=Aggregate.MEAN, window_s=window, every_s=DEMAND_EVERY_S,
        offset_s=_offset_for(DEMAND_EVERY_S), merged_phase=site_phases(cfg),
        basis="thresholds.demand_limit_w over demand_window_min (utility demand metering)",
    )


def rules_from_config(cfg: Any) -> RuleSet:
    """The rules and storage context of a validated ``GridGuardConfig``."""
    unom = float(cfg.system.nominal_voltage_v)
    fnom = float(cfg.system.nominal_frequency_hz)
    t = cfg.thresholds
    interval = str(getattr(cfg.influx.write.interval, "value", cfg.influx.write.interval))
    ctx = RuleContext(
        site=cfg.site.id, raw_bucket=cfg.influx.buckets.raw,
        events_bucket=cfg.influx.buckets.events, intervals=INTERVAL_TAGS[interval],
        record_s=RECORD_S[interval], timezone=cfg.site.timezone,
    )
    rules: list[Rule] = []
    rules += _voltage_rules(cfg, t.voltage, unom)
    rules += _frequency_rules(cfg, fnom)
    voltage_series = tuple(Series(ch.id, str(ch.phase)) for ch in cfg.channels.voltage)
    pq_every = _every_for(PQ_WINDOW_S)
    rules.append(Rule(
        FaultType.VOLTAGE_THD, "10-min voltage THD above the limit", unit="%",
        direction=Direction.ABOVE, input=Input.FIELD, measurement=Measurement.ELECTRICAL.value,
        field="voltage_thd_pct", series=voltage_series,
        limits=tuple(Limit(s.circuit, t.thd_voltage_max_pct) for s in voltage_series),
        aggregate=Aggregate.QUADRATIC_MEAN, window_s=PQ_WINDOW_S, every_s=pq_every,
        offset_s=_offset_for(pq_every), basis="EN 50160 §4.2.4: THD <= 8 %",
    ))
    if str(cfg.system.type) == "three_phase":
        rules.append(Rule(
            FaultType.VOLTAGE_UNBALANCE, "10-min negative-sequence voltage unbalance above the "
            "limit", unit="%", direction=Direction.ABOVE, input=Input.FIELD,
            measurement=Measurement.POLYPHASE.value, field="voltage_unbalance_neg_pct",
            series=(Series(SYSTEM_CIRCUIT),),
            limits=(Limit(SYSTEM_CIRCUIT, t.unbalance_max_pct),),
            aggregate=Aggregate.QUADRATIC_MEAN, window_s=PQ_WINDOW_S, every_s=pq_every,
            offset_s=_offset_for(pq_every), basis="EN 50160 §4.2.5: u2 <= 2 %",
        ))
    rules += _circuit_rules(cfg, unom)
    demand = _demand_rule(cfg)
    if demand is not None:
        rules.append(demand)
    return RuleSet(ctx, tuple(rules))


def by_type(rules: Sequence[Rule], fault_type: FaultType) -> Rule:
    for rule in rules:
        if rule.type is fault_type:
            return rule
    raise KeyError(f"no rule of type {fault_type.value!r}; have {[r.type.value for r in rules]}")
