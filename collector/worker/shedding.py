"""Load shedding: which relay to open or close, decided from measured demand and heat.

Rules (docs/alerting.md, "Load shedding"):

1. **Never a critical circuit.** Circuits flagged ``critical`` are dropped when the
   shedder is built and never appear in a decision, whatever the configuration
   says (the config check also refuses a relay on one).
2. **Demand**: while the site's active power exceeds ``demand_limit_w``, open one
   relay per ``settle_s`` in priority order — every ``low`` circuit before any
   ``medium``, in configuration order within a priority. ``high`` circuits are
   never shed for demand: exceeding a demand limit costs money, not safety.
3. **Main incomer heat**: while the main circuit's I²t level is at or above
   ``thermal_shed_level`` and still rising, shed in the same order (low, medium);
   at ``thermal_emergency_level`` (the main breaker is about to open and take the
   critical loads with it) ``high`` circuits follow as a last resort.
4. **A circuit's own heat**: a low/medium circuit at ``thermal_shed_level`` is opened
   itself; a high one only at the emergency level (its breaker would open it anyway,
   and a relay closes again by itself whereas a tripped breaker needs a visit).
5. **Minimum times**: a relay stays open at least ``min_off_s`` and closed at least
   ``min_on_s`` (compressors must not short-cycle); only an emergency (rules 3-4 at
   the emergency level) may open a relay sooner after it closed.
6. **Hysteresis and restore**: loads come back in reverse order (last shed, first
   restored), one per ``settle_s``, only when the site power plus the load the
   circuit drew before it was shed stays below ``demand_limit_w·(1 - hysteresis)``,
   and the heat levels are below ``thermal_shed_level·(1 - hysteresis)``. Without a
   current power reading nothing is restored.

Pure: :meth:`LoadShedder.decide` maps (state, inputs) to (actions, new state); the
engine switches the outputs and audits each action.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from collector.config.circuits import Priority


class ShedReason(StrEnum):
    DEMAND = "demand"
    MAIN_THERMAL = "main_thermal"
    CIRCUIT_THERMAL = "circuit_thermal"


class RelayActionKind(StrEnum):
    OPEN = "open"  # disconnect the load (energise the relay)
    CLOSE = "close"  # restore the load


_ORDERED_REASONS = (ShedReason.DEMAND, ShedReason.MAIN_THERMAL)


@dataclass(frozen=True, slots=True)
class Sheddable:
    """A circuit with a relay: id, shedding priority, critical flag."""

    circuit: str
    priority: Priority
    critical: bool = False


@dataclass(frozen=True, slots=True)
class SheddingPolicy:
    """Limits and timing of load shedding (powers [W], times [s], levels [1])."""

    demand_limit_w: float | None = None
    hysteresis_pct: float = 5.0
    min_off_s: float = 300.0
    min_on_s: float = 300.0
    settle_s: float = 15.0
    thermal_shed_level: float = 0.9
    thermal_emergency_level: float = 1.0

    def __post_init__(self) -> None:
        if self.demand_limit_w is not None and not self.demand_limit_w > 0:
            raise ValueError(f"demand_limit_w: must be > 0 W or None, got {self.demand_limit_w}")
        if not 0 <= self.hysteresis_pct < 100:
            raise ValueError(f"hysteresis_pct: must be in [0, 100), got {self.hysteresis_pct}")
        for name in ("min_off_s", "min_on_s", "settle_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0 s, got {getattr(self, name)}")
        if not 0 < self.thermal_shed_level <= self.thermal_emergency_level:
            raise ValueError(
                "thermal_shed_level: must be > 0 and <= thermal_emergency_level, got "
                f"{self.thermal_shed_level} and {self.thermal_emergency_level}"
            )

    @property
    def restore_factor(self) -> float:
        return 1.0 - self.hysteresis_pct / 100.0


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """One relay: shed or not, when it last switched (monotonic [s]), why, what it drew."""

    circuit: str
    shed: bool = False
    changed_s: float | None = None
    reason: ShedReason | None = None
    load_w: float | None = None
    seq: int = 0  # order of shedding, for last-shed-first-restored


@dataclass(frozen=True, slots=True)
class SheddingState:
    relays: tuple[RelayStatus, ...]
    last_action_s: float | None = None
    seq: int = 0

    def status(self, circuit: str) -> RelayStatus:
        for r in self.relays:
            if r.circuit == circuit:
                return r
        raise KeyError(f"no sheddable relay for circuit {circuit!r}")

    def shed_circuits(self) -> tuple[str, ...]:
        return tuple(r.circuit for r in self.relays if r.shed)


@dataclass(frozen=True, slots=True)
class SheddingInputs:
    """What the shedder knows at ``now_s`` (monotonic [s]); None/absent = no reading."""

    now_s: float
    site_power_w: float | None = None
    circuit_power_w: Mapping[str, float] = field(default_factory=dict)
    circuit_level: Mapping[str, float] = field(default_factory=dict)
    main_level: float | None = None
    main_heating: bool = False


@dataclass(frozen=True, slots=True)
class RelayAction:
    circuit: str
    kind: RelayActionKind
    reason: ShedReason
    priority: Priority
    detail: str
    value: float | None = None
    threshold: float | None = None



class LoadShedder:
    """Decides relay actions; holds only its configuration (state is passed in and out)."""

    def __init__(self, circuits: Sequence[Sheddable], policy: SheddingPolicy) -> None:
        ids = [c.circuit for c in circuits]
        dupes = sorted({c for c in ids if ids.count(c) > 1})
        if dupes:
            raise ValueError(f"circuits: each circuit may have one relay, repeated: {dupes}")
        # Rule 1: a critical circuit is not a candidate, ever.
        self._candidates = tuple(c for c in circuits if not c.critical)
        self._excluded = tuple(c.circuit for c in circuits if c.critical)
        self._policy = policy

    @property
    def policy(self) -> SheddingPolicy:
        return self._policy

    @property
    def candidates(self) -> tuple[Sheddable, ...]:
        return self._candidates

    @property
    def excluded_critical(self) -> tuple[str, ...]:
        return self._excluded

    def initial_state(self, now_s: float | None = None) -> SheddingState:
        """Every load on. ``now_s``: count the loads as switched on at that time, so the
        minimum on-time also holds across a restart of the worker (which releases
        every relay)."""
        return SheddingState(tuple(RelayStatus(c.circuit, changed_s=now_s)
                                   for c in self._candidates))

    def decide(
        self, state: SheddingState, inputs: SheddingInputs
    ) -> tuple[list[RelayAction], SheddingState]:
        p = self._policy
        r = _Round(p, inputs, {s.circuit: s for s in state.relays}, state.seq,
                   state.last_action_s)
        # Rule 4: a circuit's own heat (independent per circuit, no settling needed:
        # opening it removes exactly its own current).
        for c in self._candidates:
            level = inputs.circuit_level.get(c.circuit, 0.0)
            emergency = level >= p.thermal_emergency_level
            allowed = c.priority is not Priority.HIGH or emergency
            if level >= p.thermal_shed_level and allowed and r.may_open(c, emergency):
                r.open(c, ShedReason.CIRCUIT_THERMAL,
                       f"I²t at {level:.0%} of the breaker's trip heat", level,
                       p.thermal_shed_level)

        settled = r.last_action_s is None or inputs.now_s - r.last_action_s >= p.settle_s
        main_level = inputs.main_level
        main_need = (main_level is not None and inputs.main_heating
                     and main_level >= p.thermal_shed_level)
        main_emergency = main_need and (main_level or 0.0) >= p.thermal_emergency_level
        demand_need = (p.demand_limit_w is not None and inputs.site_power_w is not None
                       and inputs.site_power_w > p.demand_limit_w)
        if main_need or demand_need:
            if settled and not r.actions:
                self._shed_next(r, main_need, main_emergency)
        elif not r.actions:
            self._restore(r, settled)
        new_state = SheddingState(
            tuple(r.status[s.circuit] for s in state.relays), r.last_action_s, r.seq
        )
        return r.actions, new_state

    def _shed_next(self, r: _Round, main_need: bool, main_emergency: bool) -> None:
        p = self._policy
        inputs = r.inputs
        allowed = (Priority.LOW, Priority.MEDIUM) + ((Priority.HIGH,) if main_emergency else ())
        for prio in allowed:
            for c in self._candidates:
                if c.priority is not prio or not r.may_open(c, main_emergency):
                    continue
                if main_need:
                    r.open(c, ShedReason.MAIN_THERMAL,
                           f"main incomer I²t at {inputs.main_level or 0.0:.0%} of trip heat",
                           inputs.main_level, p.thermal_shed_level)
                else:
                    r.open(c, ShedReason.DEMAND,
                           f"site power {inputs.site_power_w or 0.0:.0f} W above the "
                           f"{p.demand_limit_w or 0.0:.0f} W limit",
                           inputs.site_power_w, p.demand_limit_w)
                return

    def _restore(self, r: _Round, settled: bool) -> None:
        p = self._policy
        inputs = r.inputs
        now = inputs.now_s
        prio = {c.circuit: c.priority for c in self._candidates}
        limit_back = p.thermal_shed_level * p.restore_factor

        def demand_ok(s: RelayStatus) -> bool:
            if p.demand_limit_w is None:
                return True
            if inputs.site_power_w is None:
                return False  # no reading: keep what is shed
            return inputs.site_power_w + (s.load_w or 0.0) <= p.demand_limit_w * p.restore_factor

        def eligible(s: RelayStatus) -> bool:
            return (s.changed_s is not None and now - s.changed_s >= p.min_off_s
                    and inputs.circuit_level.get(s.circuit, 0.0) <= limit_back
                    and (inputs.main_level is None or inputs.main_level <= limit_back)
                    and demand_ok(s))

        # circuits shed for their own heat come back on their own
        for s in list(r.status.values()):
            if s.shed and s.reason is ShedReason.CIRCUIT_THERMAL and eligible(s):
                r.close(s, prio[s.circuit])
                return
        if not settled:
            return
        ordered = [s for s in r.status.values() if s.shed and s.reason in _ORDERED_REASONS]
        if ordered:
            top = max(ordered, key=lambda s: s.seq)  # last shed, first restored
            if eligible(top):
                r.close(top, prio[top.circuit])


class _Round:
    """Working state of one :meth:`LoadShedder.decide` call."""

    def __init__(self, policy: SheddingPolicy, inputs: SheddingInputs,
                 status: dict[str, RelayStatus], seq: int, last_action_s: float | None) -> None:
        self.policy = policy
        self.inputs = inputs
        self.status = status
        self.seq = seq
        self.last_action_s = last_action_s
        self.actions: list[RelayAction] = []

    def may_open(self, c: Sheddable, emergency: bool) -> bool:
        s = self.status.get(c.circuit)
        if s is None or s.shed:
            return False
        return (emergency or s.changed_s is None
                or self.inputs.now_s - s.changed_s >= self.policy.min_on_s)

    def open(self, c: Sheddable, reason: ShedReason, detail: str, value: float | None,
             threshold: float | None) -> None:
        now = self.inputs.now_s
        self.seq += 1
        self.last_action_s = now
        self.status[c.circuit] = RelayStatus(c.circuit, True, now, reason,
                                             self.inputs.circuit_power_w.get(c.circuit),
                                             self.seq)
        self.actions.append(RelayAction(c.circuit, RelayActionKind.OPEN, reason, c.priority,
                                        detail, value, threshold))

    def close(self, s: RelayStatus, priority: Priority) -> None:
        now = self.inputs.now_s
        if s.reason is None or s.changed_s is None:
            return  # never shed by us: nothing to restore
        self.status[s.circuit] = replace(s, shed=False, changed_s=now, reason=None, load_w=None)
        self.last_action_s = now
        self.actions.append(RelayAction(
            s.circuit, RelayActionKind.CLOSE, s.reason, priority,
            f"restored after {now - s.changed_s:.0f} s off",
            self.inputs.site_power_w, self.policy.demand_limit_w,
        ))
