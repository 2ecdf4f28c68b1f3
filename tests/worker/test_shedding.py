"""Load shedding: order, the critical-circuit guarantee, minimum times, hysteresis."""

from __future__ import annotations

import itertools
import random

import pytest

from collector.config.circuits import Priority
from collector.worker.shedding import (
    LoadShedder,
    RelayActionKind,
    Sheddable,
    SheddingInputs,
    SheddingPolicy,
    SheddingState,
    ShedReason,
)

LIMIT_W = 10_000.0
POLICY = SheddingPolicy(demand_limit_w=LIMIT_W, hysteresis_pct=5.0, min_off_s=300.0,
                        min_on_s=300.0, settle_s=15.0)
CIRCUITS = [
    Sheddable("heat_pump", Priority.MEDIUM),
    Sheddable("ev_charger", Priority.LOW),
    Sheddable("server", Priority.HIGH),
    Sheddable("freezer", Priority.LOW, critical=True),
    Sheddable("sauna", Priority.LOW),
]
LOADS_W = {"heat_pump": 2500.0, "ev_charger": 7400.0, "server": 300.0, "freezer": 150.0,
           "sauna": 6000.0}


class Site:
    """A toy installation: site power = base + loads of circuits not shed."""

    def __init__(self, shedder: LoadShedder, base_w: float) -> None:
        self.shedder = shedder
        self.state: SheddingState = shedder.initial_state()
        self.base_w = base_w
        self.log: list[tuple[float, str, RelayActionKind, ShedReason]] = []

    def power(self) -> float:
        shed = set(self.state.shed_circuits())
        return self.base_w + sum(w for c, w in LOADS_W.items() if c not in shed)

    def step(self, now_s: float, **extra: object) -> None:
        shed = set(self.state.shed_circuits())
        inputs = SheddingInputs(
            now_s=now_s, site_power_w=self.power(),
            circuit_power_w={c: (0.0 if c in shed else w) for c, w in LOADS_W.items()},
            **extra,  # type: ignore[arg-type]
        )
        actions, self.state = self.shedder.decide(self.state, inputs)
        self.log += [(now_s, a.circuit, a.kind, a.reason) for a in actions]


def test_sheds_low_before_medium_never_high_never_critical() -> None:
    site = Site(LoadShedder(CIRCUITS, POLICY), base_w=9800.0)  # + 16350 W of loads
    for t in range(0, 600, 1):
        site.step(float(t))
    opened = [c for _, c, kind, _ in site.log if kind is RelayActionKind.OPEN]
    # config order within a priority: ev_charger before sauna; then medium
    assert opened == ["ev_charger", "sauna", "heat_pump"]
    assert site.power() > LIMIT_W  # still above: the high and critical loads stay on
    times = [t for t, *_ in site.log]
    assert all(b - a >= POLICY.settle_s for a, b in itertools.pairwise(times))


def test_restores_in_reverse_order_with_hysteresis_and_min_off() -> None:
    site = Site(LoadShedder(CIRCUITS, POLICY), base_w=8000.0)
    t = 0.0
    while t < 100:
        site.step(t)
        t += 1
    assert set(site.state.shed_circuits()) == {"ev_charger", "sauna", "heat_pump"}
    site.base_w = -6000.0  # the sun comes out (PV export)
    while t < 3000:
        site.step(t)
        t += 1
    closes = [(tt, c) for tt, c, kind, _ in site.log if kind is RelayActionKind.CLOSE]
    assert [c for _, c in closes] == ["heat_pump", "sauna"]  # last shed, first back
    opens = {c: tt for tt, c, kind, _ in site.log if kind is RelayActionKind.OPEN}
    for tt, c in closes:
        assert tt - opens[c] >= POLICY.min_off_s
    # the EV charger's 7400 W would push the site to -6000 + 300 + 150 + 2500 + 6000
    # + 7400 = 10350 W > 95 % of the limit: hysteresis keeps it off
    assert site.state.shed_circuits() == ("ev_charger",)
    assert site.power() + LOADS_W["ev_charger"] > LIMIT_W * 0.95


def test_no_restore_without_a_power_reading() -> None:
    shedder = LoadShedder(CIRCUITS[:2], POLICY)
    state = shedder.initial_state()
    _, state = shedder.decide(state, SheddingInputs(0.0, site_power_w=LIMIT_W + 1))
    assert state.shed_circuits() == ("ev_charger",)
    actions, state = shedder.decide(state, SheddingInputs(10_000.0, site_power_w=None))
    assert actions == []
    assert state.shed_circuits() == ("ev_charger",)


def test_min_on_time_after_restore_blocks_shedding_again() -> None:
    shedder = LoadShedder([Sheddable("ev", Priority.LOW)], POLICY)
    state = shedder.initial_state()
    _, state = shedder.decide(state, SheddingInputs(0.0, site_power_w=LIMIT_W + 500))
    actions, state = shedder.decide(state, SheddingInputs(400.0, site_power_w=1000.0,
                                                          circuit_power_w={"ev": 0.0}))
    assert [a.kind for a in actions] == [RelayActionKind.CLOSE]
    for t in (401.0, 600.0, 699.0):  # over the limit, but on for less than min_on_s
        actions, state = shedder.decide(state, SheddingInputs(t, site_power_w=LIMIT_W + 500))
        assert actions == []
    actions, state = shedder.decide(state, SheddingInputs(700.0, site_power_w=LIMIT_W + 500))
    assert [a.kind for a in actions] == [RelayActionKind.OPEN]


def test_min_on_time_holds_across_a_worker_restart() -> None:
    shedder = LoadShedder([Sheddable("ev", Priority.LOW)], POLICY)
    state = shedder.initial_state(now_s=1000.0)
    actions, _ = shedder.decide(state, SheddingInputs(1100.0, site_power_w=LIMIT_W + 1))
    assert actions == []
    actions, _ = shedder.decide(state, SheddingInputs(1300.0, site_power_w=LIMIT_W + 1))
    assert len(actions) == 1


def test_circuit_heat_sheds_itself_and_high_only_at_emergency() -> None:
    shedder = LoadShedder([Sheddable("oven", Priority.MEDIUM),
                           Sheddable("server", Priority.HIGH)], POLICY)
    state = shedder.initial_state()
    actions, state = shedder.decide(state, SheddingInputs(
        0.0, site_power_w=1000.0, circuit_level={"oven": 0.92, "server": 0.95}))
    assert [(a.circuit, a.reason) for a in actions] == [("oven", ShedReason.CIRCUIT_THERMAL)]
    actions, state = shedder.decide(state, SheddingInputs(
        1.0, site_power_w=1000.0, circuit_level={"oven": 0.5, "server": 1.0}))
    assert [(a.circuit, a.reason) for a in actions] == [("server", ShedReason.CIRCUIT_THERMAL)]
    # the oven returns only after min_off and below 0.9 * 95 % heat
    actions, state = shedder.decide(state, SheddingInputs(
        299.0, site_power_w=1000.0, circuit_level={"oven": 0.1, "server": 0.1}))
    assert actions == []
    actions, _ = shedder.decide(state, SheddingInputs(
        300.0, site_power_w=1000.0, circuit_level={"oven": 0.1, "server": 0.1}))
    assert [(a.circuit, a.kind) for a in actions] == [("oven", RelayActionKind.CLOSE)]


def test_main_incomer_heat_goes_down_to_high_priority_only_in_an_emergency() -> None:
    shedder = LoadShedder(CIRCUITS, SheddingPolicy(settle_s=0.0, min_on_s=300.0))
    state = shedder.initial_state()
    order = []
    for t, level in enumerate([0.95] * 3 + [1.05] * 3):
        actions, state = shedder.decide(state, SheddingInputs(
            float(t), main_level=level, main_heating=True))
        order += [(a.circuit, a.reason) for a in actions]
    assert [c for c, _ in order] == ["ev_charger", "sauna", "heat_pump", "server"]
    assert all(r is ShedReason.MAIN_THERMAL for _, r in order)


def test_critical_circuit_is_never_opened_property() -> None:
    """Random configurations and random inputs: no action ever opens a critical circuit,
    and a medium circuit is shed for demand only when every low one already is."""
    rng = random.Random(20240605)
    for trial in range(300):
        n = rng.randint(1, 7)
        circuits = [Sheddable(f"c{k}", rng.choice(list(Priority)), rng.random() < 0.35)
                    for k in range(n)]
        policy = SheddingPolicy(
            demand_limit_w=rng.choice([None, rng.uniform(1000, 20000)]),
            hysteresis_pct=rng.uniform(0, 20), min_off_s=rng.uniform(0, 60),
            min_on_s=rng.uniform(0, 60), settle_s=rng.uniform(0, 10),
            thermal_shed_level=rng.uniform(0.5, 1.0), thermal_emergency_level=1.0,
        )
        shedder = LoadShedder(circuits, policy)
        critical = {c.circuit for c in circuits if c.critical}
        state = shedder.initial_state(now_s=rng.choice([None, 0.0]))
        now = 0.0
        for _ in range(200):
            now += rng.uniform(0.1, 20.0)
            inputs = SheddingInputs(
                now_s=now,
                site_power_w=rng.choice([None, rng.uniform(0, 40000)]),
                circuit_power_w={c.circuit: rng.uniform(0, 8000) for c in circuits},
                circuit_level={c.circuit: rng.uniform(0, 1.3) for c in circuits},
                main_level=rng.choice([None, rng.uniform(0, 1.3)]),
                main_heating=rng.random() < 0.5,
            )
            actions, state = shedder.decide(state, inputs)
            opened = {a.circuit for a in actions if a.kind is RelayActionKind.OPEN}
            assert not opened & critical, (trial, actions)
            assert not set(state.shed_circuits()) & critical, trial
            for a in actions:
                if a.kind is RelayActionKind.OPEN and a.reason is ShedReason.DEMAND:
                    assert a.priority is not Priority.HIGH
                    if a.priority is Priority.MEDIUM:
                        lows = [c.circuit for c in shedder.candidates
                                if c.priority is Priority.LOW]
                        for low in lows:
                            s = state.status(low)
                            locked = (s.changed_s is not None
                                      and now - s.changed_s < policy.min_on_s)
                            assert s.shed or locked, (trial, low, a)


def test_duplicate_relay_is_refused() -> None:
    with pytest.raises(ValueError, match="circuits"):
        LoadShedder([Sheddable("a", Priority.LOW), Sheddable("a", Priority.LOW)], POLICY)
