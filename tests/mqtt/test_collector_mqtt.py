"""The real collector process (`gridguard run --config`, MQTT enabled) against a real
mosquitto: discovery for every configured circuit, readings whose numbers match what the
same run reports in its JSON Lines, the dip of the demo scenario on the fault topic, and
the site marked offline when the collector is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.mosquitto_fixture import MosquittoServer
from tests.mqtt.helpers import Observer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "gridguard.example.yaml"


def _config(tmp_path: Path, broker: MosquittoServer) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["source"]["simulated"]["scenario"] = str(REPO / "config" / "scenarios" / "demo.yaml")
    data["mqtt"] = {"enabled": True, "host": broker.host, "port": broker.port,
                    "topic_prefix": "gg", "discovery_prefix": "ha", "publish_interval_s": 1}
    for section in ("influx", "alerts", "load_control", "analytics"):
        data.pop(section, None)
    data["events"] = {"waveform_capture": {"enabled": False}}
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_collector_publishes_discovery_readings_and_faults(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    cfg = _config(tmp_path, mosquitto)
    site = yaml.safe_load(cfg.read_text())["site"]["id"]
    circuits = [c["id"] for c in yaml.safe_load(cfg.read_text())["circuits"]]
    observer = Observer(mosquitto.host, mosquitto.port, ["gg/#", "ha/#"])
    metrics = tmp_path / "m.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector.cli.app", "run", "--config", str(cfg),
         "--speed", "4", "--no-live", "--metrics-out", str(metrics)],
        cwd=REPO, env=dict(os.environ), stderr=subprocess.PIPE, text=True,
    )
    try:
        status = f"gg/{site}/status"
        observer.wait_payload(status, "online", timeout=60)
        # every configured circuit has a power sensor in Home Assistant's discovery
        msgs = observer.wait_for(
            lambda ms: all(any(m.topic.startswith("ha/sensor/") and f"/{c}_" in m.topic
                               for m in ms) for c in circuits),
            timeout=60, what="discovery of every circuit")
        configs = [json.loads(m.text) for m in msgs if m.topic.startswith("ha/") and m.payload]
        energy = [c for c in configs if c.get("device_class") == "energy"]
        assert energy
        assert all(c["state_class"] == "total_increasing" for c in energy)
        # the demo scenario's 60 % dip on phase A at 20 s of signal (5 s at speed 4)
        observer.wait_for(
            lambda ms: any(m.topic == f"gg/{site}/events" and "voltage_dip" in m.text
                           for m in ms),
            timeout=60, what="the dip on the events topic")
        reading = observer.last(f"gg/{site}/reading/solar/ABC")
        assert reading is not None
        solar = json.loads(reading.text)
        assert solar["power_active_w"] < -7000  # the 8 kW inverter exports
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # the broker publishes the last will as soon as the connection drops
    observer.wait_payload(status, "offline", timeout=30)
    reported = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    values = [r["power_active_w"] for r in reported
              if r["channel"] == "solar" and r["phase"] == "ABC"]
    assert solar["interval"] in ("basic", "150c")
    # the MQTT number is one the run measured (basic) or an average of such (150c)
    assert min(values) - 1e-6 <= solar["power_active_w"] <= max(values) + 1e-6
    observer.close()
