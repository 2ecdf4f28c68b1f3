"""Relays and acknowledgements from Home Assistant, carried out by the rule worker.

In-process, on an injected clock: manual switching through the load-shedding rules
(minimum on/off times, manual holds against the shedder, the thermal emergency, the
release on stop) and acknowledging in the engine's alert book. Then the real thing: a
``gridguard worker --simulate-outputs`` process, a real mosquitto and a real influxd —
signed commands switch the simulated relay, the retained state follows, refused and
forged commands change nothing, a signed ack acknowledges, the audit lands in InfluxDB.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from collector.clock import FakeClock
from collector.config.circuits import Priority
from collector.model import Metrics, Severity
from collector.sinks.mqtt import CommandRefusedError, signing
from collector.worker.alerts import AlertSignal, AlertSource, AlertState
from collector.worker.audit import AuditAction, AuditRecord, MemoryAudit, Outcome
from collector.worker.engine import WorkerEngine
from collector.worker.mqtt_control import EngineAcknowledger, ManualPolicy, ManualRelays
from collector.worker.outputs import SimulatedOutputs, relay_output
from collector.worker.settings import CircuitSpec, RelaySpec, WorkerSettings
from collector.worker.shedding import SheddingPolicy
from tests.influxd_fixture import InfluxBucket, InfluxServer, free_port
from tests.mosquitto_fixture import MosquittoServer
from tests.mqtt.helpers import SECRET, Observer
from tests.worker.test_server import grafana_payload

REPO = Path(__file__).resolve().parents[2]
EV, HEATER, FRIDGE = "ev", "heater", "fridge"
EV_OUT = relay_output(EV)


class Board:
    """ManualRelays over simulated outputs, with a stub for the engine's heat levels."""

    def __init__(self, policy: ManualPolicy, *, critical: tuple[str, ...] = ()) -> None:
        self.clock = FakeClock()
        self.outputs = SimulatedOutputs(self.clock)
        self.audit = MemoryAudit()
        self.heat: dict[str, float] = {}
        self.relays = ManualRelays(self.outputs, [EV, HEATER, *critical], policy=policy,
                                   clock=self.clock, audit=self.audit, critical=critical,
                                   mains=("main",))
        self.relays.watch_heat(self)
        self.notified = 0
        self.relays.add_listener(self._count)

    def _count(self) -> None:
        self.notified += 1

    def level(self, circuit: str) -> float:
        return self.heat.get(circuit, 0.0)

    def ev_changes(self) -> list[tuple[float, bool]]:
        return [(c.t_s, c.on) for c in self.outputs.changes(EV_OUT)]

    def records(self, action: AuditAction, outcome: Outcome) -> list[AuditRecord]:
        return [r for r in self.audit.actions(action) if r.outcome is outcome]


def test_manual_switching_waits_for_the_minimum_on_and_off_times() -> None:
    # load_control.min_on_s / min_off_s of the configuration; the worker's start counts
    # as the relay's last switching (it releases every relay when it starts)
    b = Board(ManualPolicy(min_on_s=300.0, min_off_s=120.0))
    with pytest.raises(CommandRefusedError, match=r"minimum on time 300 s.*in 300 s"):
        b.relays.switch(EV, False)
    b.clock.sleep(299.0)
    with pytest.raises(CommandRefusedError, match="in 1 s"):
        b.relays.switch(EV, False)
    assert b.ev_changes() == []
    assert b.relays.is_on(EV)
    b.clock.sleep(1.0)
    b.relays.switch(EV, False)
    assert b.ev_changes() == [(300.0, True)]  # energised: the load is off
    assert not b.relays.is_on(EV)
    (opened,) = b.records(AuditAction.RELAY_OPEN, Outcome.OK)
    assert (opened.circuit, opened.channel, opened.target) == (EV, "relay", EV_OUT)
    assert opened.detail.startswith("manual off (MQTT control)")
    b.clock.sleep(119.0)
    with pytest.raises(CommandRefusedError, match="minimum off time 120 s"):
        b.relays.switch(EV, True)
    b.clock.sleep(1.0)
    b.relays.switch(EV, True)
    assert b.ev_changes() == [(300.0, True), (420.0, False)]
    assert b.notified == 2
    # a command for the state the relay already has switches nothing and needs no wait
    b.relays.switch(EV, True)
    assert b.ev_changes() == [(300.0, True), (420.0, False)]
    assert "already on" in b.audit.actions(AuditAction.RELAY_CLOSE)[-1].detail


def test_the_minimum_times_count_from_load_sheddings_switching_too() -> None:
    b = Board(ManualPolicy(min_on_s=0.0, min_off_s=300.0))
    b.clock.sleep(1000.0)
    b.relays.set(EV_OUT, True)  # shed at t = 1000 s
    b.clock.sleep(200.0)
    with pytest.raises(CommandRefusedError, match="off for 200 s; minimum off time 300 s"):
        b.relays.switch(EV, True)
    b.clock.sleep(100.0)
    b.relays.switch(EV, True)
    assert b.ev_changes() == [(1000.0, True), (1300.0, False)]


def test_a_critical_circuit_is_never_switched_off_and_unknown_circuits_are_refused() -> None:
    b = Board(ManualPolicy(min_on_s=0.0, min_off_s=0.0), critical=(FRIDGE,))
    with pytest.raises(CommandRefusedError, match="critical"):
        b.relays.switch(FRIDGE, False)
    with pytest.raises(CommandRefusedError, match="no relay on circuit 'sauna'"):
        b.relays.switch("sauna", False)
    assert b.outputs.changes() == []
    b.relays.switch(FRIDGE, True)  # switching a critical circuit *on* is harmless
    assert b.outputs.changes() == []


def test_a_manual_off_is_never_restored_by_load_shedding() -> None:
    b = Board(ManualPolicy(min_on_s=0.0, min_off_s=0.0))
    b.relays.switch(EV, False)
    b.relays.set(EV_OUT, True)  # the shedder sheds it too: nothing to do
    b.relays.set(EV_OUT, False)  # ... and later restores it: not while it is held off
    b.clock.sleep(86_400.0)
    b.relays.tick()
    assert b.ev_changes() == [(0.0, True)]
    (held,) = b.records(AuditAction.RELAY_CLOSE, Outcome.SUPPRESSED)
    assert "switched off manually until switched on again" in held.detail
    b.relays.switch(EV, True)
    assert b.ev_changes() == [(0.0, True), (86_400.0, False)]


def test_a_manual_on_holds_against_the_shedder_but_not_against_a_thermal_emergency() -> None:
    b = Board(ManualPolicy(min_on_s=0.0, min_off_s=0.0, on_hold_s=600.0))
    b.relays.switch(EV, False)
    b.relays.switch(EV, True)
    b.relays.set(EV_OUT, True)  # demand: the shedder wants it off
    assert b.relays.is_on(EV)
    (kept,) = b.records(AuditAction.RELAY_OPEN, Outcome.SUPPRESSED)
    assert "switched on manually before" in kept.detail
    assert "(10 min)" in kept.detail
    # the main breaker at 100 % of its trip heat (docs/alerting.md, rule 3: it is about
    # to open and take the critical loads with it): the hold gives way at once
    b.heat["main"] = 0.99
    b.relays.set(EV_OUT, True)
    assert b.relays.is_on(EV)
    b.heat["main"] = 1.0
    b.relays.set(EV_OUT, True)
    assert not b.relays.is_on(EV)
    ended = b.records(AuditAction.RELAY_OPEN, Outcome.OK)[-1]
    assert "thermal emergency (heat at 100% of trip)" in ended.detail


def _demand_rig(hold_s: float) -> tuple[WorkerEngine, Board]:
    b = Board(ManualPolicy(min_on_s=0.0, min_off_s=0.0, on_hold_s=hold_s))
    settings = WorkerSettings(
        site="lab",
        circuits=(CircuitSpec(EV, 32.0, priority=Priority.LOW),
                  CircuitSpec(HEATER, 16.0, priority=Priority.LOW)),
        relays=(RelaySpec(EV, 17), RelaySpec(HEATER, 27)),
        shedding=SheddingPolicy(demand_limit_w=5000.0, settle_s=0.0, min_on_s=0.0,
                                min_off_s=0.0))
    engine = WorkerEngine(settings, clock=b.clock, outputs=b.relays, notifiers=[],
                          audit=b.audit)
    return engine, b


def _power(engine: WorkerEngine, clock: FakeClock, ev_w: float, heater_w: float) -> None:
    engine.on_metrics([Metrics(clock.now_ns(), "150c", EV, "A", {"power_active_w": ev_w}),
                       Metrics(clock.now_ns(), "150c", HEATER, "A",
                               {"power_active_w": heater_w})])


def test_a_load_switched_back_on_stays_on_for_the_hold_then_shedding_resumes() -> None:
    engine, b = _demand_rig(hold_s=600.0)
    heater_out = relay_output(HEATER)
    _power(engine, b.clock, 7400.0, 2000.0)  # 9.4 kW against a 5 kW limit
    engine.tick()
    assert b.ev_changes() == [(0.0, True)]  # low priority, first in the configuration
    b.clock.sleep(5.0)
    b.relays.switch(EV, True)  # the owner wants to charge the car now
    assert "load shedding had it off" in b.audit.actions(AuditAction.RELAY_CLOSE)[-1].detail
    for _ in range(130):  # 9.4 kW again: the shedder takes the heater instead
        b.clock.sleep(5.0)
        _power(engine, b.clock, 7400.0, 0.0 if b.outputs.state(heater_out) else 2000.0)
        engine.tick()
        b.relays.tick()
        if b.clock.t_s < 605.0:
            assert b.relays.is_on(EV), f"shed during the hold at t={b.clock.t_s}"
    assert b.outputs.state(heater_out)
    # the hold ended 600 s after the command (at t = 605 s, ticked every 5 s), and the
    # shedder still has the car charger shed: it is opened again
    assert b.ev_changes() == [(0.0, True), (5.0, False), (605.0, True)]
    assert "manual on hold ended" in b.records(AuditAction.RELAY_OPEN, Outcome.OK)[-1].detail


def test_a_load_the_shedder_restored_during_the_hold_stays_on_after_it() -> None:
    engine, b = _demand_rig(hold_s=60.0)
    _power(engine, b.clock, 3000.0, 2500.0)  # 5.5 kW: the charger (3 kW) is shed
    engine.tick()
    b.relays.switch(EV, True)
    for _ in range(40):
        # 1.5 kW now; with the 3 kW the charger drew when shed: 4.5 kW, below the
        # restore level of 5 kW x (1 - 5 %) = 4.75 kW (docs/alerting.md, rule 6)
        b.clock.sleep(5.0)
        _power(engine, b.clock, 1000.0, 500.0)
        engine.tick()
        b.relays.tick()
    assert engine.shed_circuits() == ()
    assert b.ev_changes() == [(0.0, True), (0.0, False)]


def test_stopping_releases_every_relay_and_says_so() -> None:
    b = Board(ManualPolicy(min_on_s=0.0, min_off_s=0.0))
    b.relays.switch(EV, False)
    b.relays.set(relay_output(HEATER), True)
    b.relays.release()
    assert b.relays.is_on(EV)
    assert b.relays.is_on(HEATER)
    assert not b.outputs.state(EV_OUT)
    released = b.records(AuditAction.RELAY_CLOSE, Outcome.OK)
    assert sorted(r.circuit or "" for r in released) == [EV, HEATER]
    assert all("fail-safe" in r.detail for r in released)


def test_acknowledging_through_the_engine() -> None:
    clock = FakeClock()
    audit = MemoryAudit()
    engine = WorkerEngine(WorkerSettings(site="lab", circuits=(CircuitSpec("c0", 16.0),)),
                          clock=clock, outputs=SimulatedOutputs(clock), notifiers=[],
                          audit=audit)
    for k in range(3):
        engine.on_grafana([AlertSignal(f"fault:overcurrent:c{k}:A", True, Severity.CRITICAL,
                                       "overcurrent", AlertSource.GRAFANA, f"c{k}", "A")])
    ack = EngineAcknowledger(engine)
    ack.acknowledge("2", "mqtt")
    with pytest.raises(CommandRefusedError, match="already acknowledged by MQTT control"):
        ack.acknowledge("2", "mqtt")
    with pytest.raises(CommandRefusedError, match="no alert with id '42'"):
        ack.acknowledge("42", "mqtt")
    ack.acknowledge("all", "mqtt")
    alerts = engine.list_alerts()
    assert [(a["id"], a["state"], a["acked_by"]) for a in alerts] == [
        (str(k), AlertState.ACKNOWLEDGED.value, "MQTT control") for k in (1, 2, 3)]
    assert engine.book.alarm() == (Severity.CRITICAL, False)  # the buzzer is silenced
    acks = audit.actions(AuditAction.ACKNOWLEDGE)
    assert [r.outcome for r in acks] == [Outcome.OK, Outcome.SUPPRESSED, Outcome.OK, Outcome.OK]


# -- the real worker process ----------------------------------------------------------

WEBHOOK_TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee01"


def _config(tmp_path: Path, site: str, broker: MosquittoServer, influxd: InfluxServer,
            raw: str, events: str, webhook_port: int) -> Path:
    data: dict[str, Any] = {
        "site": {"id": site},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "simulated",
                   "simulated": {"scenario": str(REPO / "config" / "scenarios" / "demo.yaml")}},
        "channels": {"voltage": [{"id": "va", "phase": "A"}],
                     "current": [{"id": f"i_{c}", "phase": "A"} for c in ("main", EV, FRIDGE)]},
        "circuits": [
            {"id": "main", "kind": "main", "phases": ["A"], "current_channels": ["i_main"],
             "breaker_rating_a": 63},
            {"id": EV, "phases": ["A"], "current_channels": [f"i_{EV}"],
             "breaker_rating_a": 32, "priority": "low"},
            {"id": FRIDGE, "phases": ["A"], "current_channels": [f"i_{FRIDGE}"],
             "breaker_rating_a": 10, "priority": "high", "critical": True},
        ],
        # no shedding can happen (limit far above anything), manual switching only;
        # switching off is allowed at once, back on only after 10 minutes
        "load_control": {"enabled": True, "demand_limit_w": 1_000_000,
                         "relays": [{"circuit": EV, "gpio_pin": 17}],
                         "min_on_s": 0, "min_off_s": 600},
        "influx": {"enabled": True, "url": influxd.url, "org": influxd.org,
                   "token_env": "TEST_INFLUX_TOKEN",
                   "buckets": {"raw": raw, "events": events},
                   "spool": {"path": str(tmp_path / "spool")}},
        "alerts": {"webhook": {"enabled": True, "bind_host": "127.0.0.1", "port": webhook_port,
                               "bearer_token_env": "TEST_WEBHOOK_TOKEN"}},
        "mqtt": {"enabled": True, "host": broker.host, "port": broker.port,
                 "publish_interval_s": 1,
                 "control": {"enabled": True, "shared_secret_env": "TEST_MQTT_SECRET"}},
    }
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class Commander:
    """Sends commands as Home Assistant's automation does and waits for each result."""

    def __init__(self, obs: Observer, site: str) -> None:
        self.obs = obs
        self.site = site
        self.control = f"gridguard/{site}/control"
        self.result_topic = f"{self.control}/result"

    def send(self, command: dict[str, Any]) -> dict[str, Any]:
        self.obs.publish(self.control, json.dumps(command))
        nonce = command["nonce"]

        def mine(msgs: list[Any]) -> bool:
            return any(m.topic == self.result_topic and json.loads(m.text)["nonce"] == nonce
                       for m in msgs)
        msgs = self.obs.wait_for(mine, 30.0, f"the result for {command['cmd']}")
        return next(json.loads(m.text) for m in msgs if m.topic == self.result_topic
                    and json.loads(m.text)["nonce"] == nonce)

    def signed(self, cmd: str, **args: str) -> dict[str, Any]:
        return signing.sign_command(self.site, cmd, args, SECRET)


def _states(obs: Observer, topic: str) -> list[str]:
    return [m.text for m in obs.messages if m.topic == topic]


def test_worker_process_carries_out_signed_commands_from_home_assistant(
        tmp_path: Path, mosquitto: MosquittoServer, influxd: InfluxServer,
        influx_bucket: InfluxBucket) -> None:
    site = f"wk{os.getpid()}"
    port = free_port()
    raw = influxd.create_bucket(f"{influx_bucket.name}-raw")
    cfg = _config(tmp_path, site, mosquitto, influxd, raw.name, influx_bucket.name, port)
    base = f"gridguard/{site}"
    ev_state = f"{base}/relay/{EV}/state"
    obs = Observer(mosquitto.host, mosquitto.port,
                   [f"{base}/#", f"homeassistant/+/gridguard_{site}/+/config"])
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "TEST_INFLUX_TOKEN": influxd.token,
           "GRIDGUARD_WORKER_INFLUX_TOKEN": influxd.token, "TEST_MQTT_SECRET": SECRET,
           "TEST_WEBHOOK_TOKEN": WEBHOOK_TOKEN, "COLUMNS": "200"}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector.cli.app", "worker", "--config", str(cfg),
             "--state-file", str(tmp_path / "alerts.json"), "--simulate-outputs",
             "--poll-s", "60", "-v"],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    try:
        obs.wait_payload(f"{base}/worker/status", "online", timeout=60)
        obs.wait_payload(ev_state, "ON")
        # discovery: the worker announces only its own entities, under its own status
        configs = obs.wait_for(
            lambda ms: sum(m.topic.startswith("homeassistant/") for m in ms) >= 2,
            what="the switch and the button")
        components = sorted(m.topic.split("/")[1] for m in configs
                            if m.topic.startswith("homeassistant/"))
        assert components == ["button", "switch"]
        switch = json.loads(next(m.text for m in configs
                                 if m.topic.startswith("homeassistant/switch/")))
        assert switch["availability_topic"] == f"{base}/worker/status"
        assert (switch["state_topic"], switch["optimistic"]) == (ev_state, False)

        # an alert to acknowledge later, from Grafana's webhook
        resp = requests.post(f"{api}/grafana", data=json.dumps(grafana_payload()),
                             headers={**auth, "Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 200

        c = Commander(obs, site)
        # a signed OFF for a critical circuit: refused, nothing switched
        refused = c.send(c.signed("relay", circuit=FRIDGE, state="off"))
        assert refused["accepted"] is False
        assert "critical" in refused["reason"]
        # a forged OFF (signature of another command) for the charger: nothing happens
        forged = {**c.signed("relay", circuit=EV, state="off"), "nonce": signing.new_nonce()}
        assert c.send(forged) == {"accepted": False, "reason": "bad signature", "cmd": "relay",
                                  "nonce": forged["nonce"], "circuit": EV}
        assert _states(obs, ev_state) == ["ON"] * len(_states(obs, ev_state))
        # the genuine OFF switches the simulated relay; the retained state follows
        result = c.send(c.signed("relay", circuit=EV, state="off"))
        assert (result["accepted"], result["reason"]) == (True, f"{EV} switched off")
        obs.wait_payload(ev_state, "OFF")
        late = Observer(mosquitto.host, mosquitto.port, [ev_state])
        try:
            retained = late.wait_payload(ev_state, "OFF")
            assert retained.retain, "Home Assistant starting later must see the truth"
        finally:
            late.close()
        # back on within min_off_s: refused by the load-shedding rule, still off
        early = c.send(c.signed("relay", circuit=EV, state="on"))
        assert early["accepted"] is False
        assert "minimum off time 600 s" in early["reason"]
        assert obs.last(ev_state).text == "OFF"  # type: ignore[union-attr]
        # a signed ack from the button acknowledges the alert in the worker
        assert c.send(c.signed("ack", alert="1"))["accepted"] is True
        listed = requests.get(f"{api}/alerts", headers=auth, timeout=10).json()["alerts"]
        assert [(a["id"], a["state"], a["acked_by"]) for a in listed] == [
            ("1", "acknowledged", "MQTT control")]
    except AssertionError as exc:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise AssertionError(f"{exc}\n--- worker log (tail) ---\n{tail}") from exc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        influxd.delete_bucket(raw)
    output = log_path.read_text(errors="replace")
    assert proc.returncode == 0, output
    # the simulated relay was energised once (charger off) and released on stop
    assert output.count(f"output {EV_OUT} -> on (simulated)") == 1, output
    assert f"output {relay_output(FRIDGE)}" not in output
    obs.wait_payload(f"{base}/worker/status", "offline")
    obs.wait_payload(ev_state, "ON")  # released on stop, and said so before going offline
    obs.close()

    rows = influxd.query(
        f'from(bucket: "{influx_bucket.name}") |> range(start: -1h) '
        '|> filter(fn: (r) => r._measurement == "audit") '
        '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value") '
        '|> group() |> sort(columns: ["_time"])')
    relay = [(r["type"], r.get("circuit"), r["outcome"], r["detail"]) for r in rows
             if r["type"] in ("relay_open", "relay_close")]
    assert [(t, cc, o) for t, cc, o, _ in relay] == [
        ("relay_open", FRIDGE, "suppressed"),
        ("relay_open", EV, "ok"),
        ("relay_close", EV, "suppressed"),
        ("relay_close", EV, "ok"),
    ], relay
    assert "critical" in relay[0][3]
    assert relay[1][3].startswith("manual off (MQTT control)")
    assert "minimum off time" in relay[2][3]
    assert relay[3][3].startswith("worker stopping")
    (ack,) = [r for r in rows if r["type"] == "acknowledge"]
    assert (ack["alert_id"], ack["outcome"], ack["target"]) == ("1", "ok", "MQTT control")
