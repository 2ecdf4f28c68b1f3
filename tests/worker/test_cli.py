"""The commands: ``test-alerts`` against local servers, and ``worker`` + ``alerts list/ack``
as a real process receiving a Grafana webhook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import typer
import yaml
from typer.testing import CliRunner

from collector.cli import worker_cmd
from tests.influxd_fixture import free_port
from tests.worker.conftest import HttpReceiver, SmtpServer, TlsFiles
from tests.worker.test_server import grafana_payload

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00"
TWILIO_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
SID = "AC" + "0123456789abcdef" * 2


def _app() -> typer.Typer:
    app = typer.Typer()
    worker_cmd.register(app)
    return app


def _config(tmp_path: Path, *, smtp_port: int, twilio_url: str | None,
            webhook_port: int) -> Path:
    data: dict[str, Any] = {
        "site": {"id": "lab"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230, "nominal_frequency_hz": 50},
        "source": {"type": "simulated",
                   "simulated": {"scenario": str(REPO / "config" / "scenarios" / "demo.yaml")}},
        "channels": {"voltage": [{"id": "va", "phase": "A"}],
                     "current": [{"id": "i_heater", "phase": "A"}]},
        "circuits": [{"id": "heater", "phases": ["A"], "current_channels": ["i_heater"],
                      "breaker_rating_a": 16}],
        "influx": {"spool": {"path": str(tmp_path / "spool")}},
        "alerts": {
            "webhook": {"enabled": True, "bind_host": "127.0.0.1", "port": webhook_port,
                        "bearer_token_env": "TEST_WEBHOOK_TOKEN"},
            "email": {"enabled": True, "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                      "security": "none", "from": "gridguard@example.org",
                      "to": ["owner@example.org"]},
            "escalation": {"enabled": True, "after_min": 1, "contacts": ["boss@example.org"]},
        },
    }
    if twilio_url is not None:
        data["alerts"]["sms"] = {"enabled": True, "account_sid": SID,
                                 "auth_token_env": "TEST_TWILIO_TOKEN",
                                 "from": "+4915100000000", "to": ["+4915100000001"],
                                 "api_url": twilio_url}
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TWILIO_TOKEN)


@pytest.mark.usefixtures("env")
def test_test_alerts_reports_every_channel_that_worked(
        tmp_path: Path, smtp_server: SmtpServer, https_receiver: HttpReceiver,
        http_receiver: HttpReceiver, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.cert))  # trust the test CA
    https_receiver.status = 201
    https_receiver.reply = {"sid": "SMtest"}
    cfg = _config(tmp_path, smtp_port=smtp_server.port, twilio_url=https_receiver.url,
                  webhook_port=free_port())
    result = CliRunner().invoke(_app(), ["test-alerts", "--config", str(cfg),
                                         "--notify-webhook", http_receiver.url + "/in"],
                                catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for row in ("owner@example.org", "boss@example.org", "+49151*****001",
                http_receiver.url + "/in"):
        assert row in out
    assert "all 4 deliveries worked" in out
    assert "FAILED" not in out
    assert sorted(m.rcpt_tos[0] for m in smtp_server.wait_for(2)) == [
        "boss@example.org", "owner@example.org"]
    (sms,) = https_receiver.received()
    assert sms.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    (hook,) = http_receiver.received()
    assert hook.json()["reason"] == "test"


@pytest.mark.usefixtures("env")
def test_test_alerts_exits_1_and_names_the_failed_channel(
        tmp_path: Path, http_receiver: HttpReceiver) -> None:
    cfg = _config(tmp_path, smtp_port=free_port(), twilio_url=None, webhook_port=free_port())
    result = CliRunner().invoke(_app(), ["test-alerts", "--config", str(cfg),
                                         "--notify-webhook", http_receiver.url],
                                catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "FAILED" in result.output
    assert "2 of 3 deliveries failed" in result.output  # two emails down, the webhook ok
    assert len(http_receiver.received()) == 1


@pytest.mark.usefixtures("env")
def test_worker_process_receives_grafana_and_is_acknowledged_by_the_cli(
        tmp_path: Path, smtp_server: SmtpServer, http_receiver: HttpReceiver) -> None:
    port = free_port()
    cfg = _config(tmp_path, smtp_port=smtp_server.port, twilio_url=None, webhook_port=port)
    state = tmp_path / "state" / "alerts.json"
    code = ("import typer; from collector.cli import worker_cmd; app = typer.Typer(); "
            "worker_cmd.register(app); app()")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "worker", "--config", str(cfg), "--state-file",
         str(state), "--simulate-outputs", "--notify-webhook", http_receiver.url + "/out"],
        cwd=REPO, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        resp = requests.post(url + "/grafana", data=json.dumps(grafana_payload()),
                             headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}",
                                      "Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 200
        deadline = time.monotonic() + 20  # the dispatcher sends within ~0.5 s
        while not http_receiver.received() and time.monotonic() < deadline:
            time.sleep(0.05)
        (hook,) = http_receiver.received()
        assert hook.path == "/out"
        assert (hook.json()["severity"], hook.json()["type"]) == ("critical", "overcurrent")
        assert smtp_server.mails == []  # Grafana's email contact point mails it, not us

        runner = CliRunner()
        listed = runner.invoke(_app(), ["alerts", "list", "--config", str(cfg)],
                               env={"COLUMNS": "200"})
        assert listed.exit_code == 0, listed.output
        assert "overcurrent" in listed.output
        assert "notified" in listed.output
        acked = runner.invoke(_app(), ["alerts", "ack", "1", "--config", str(cfg),
                                       "--by", "sam"])
        assert acked.exit_code == 0, acked.output
        assert "alert 1 acknowledged by sam" in acked.output
        missing = runner.invoke(_app(), ["alerts", "ack", "99", "--config", str(cfg)])
        assert missing.exit_code == 1
        assert "404" in missing.output
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output.decode()
    saved = json.loads(state.read_text())
    (alert,) = saved["alerts"]
    assert (alert["state"], alert["acked_by"]) == ("acknowledged", "sam")
    # with the worker stopped, `alerts list` falls back to the saved state
    listed = CliRunner().invoke(_app(), ["alerts", "list", "--config", str(cfg),
                                         "--state-file", str(state)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "worker not running" in listed.output
    assert "acknowledged" in listed.output


@pytest.mark.usefixtures("env")
def test_worker_refuses_the_collectors_write_only_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path, smtp_port=free_port(), twilio_url=None, webhook_port=free_port())
    data = yaml.safe_load(cfg.read_text())
    data["influx"].update({"enabled": True, "token_env": "GG_TEST_COLLECTOR_CREDENTIAL"})
    cfg.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("GG_TEST_COLLECTOR_CREDENTIAL", "gridguard-collector:" + "Ab1" * 15)
    monkeypatch.delenv("GRIDGUARD_WORKER_INFLUX_TOKEN", raising=False)
    result = CliRunner().invoke(_app(), ["worker", "--config", str(cfg)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "GRIDGUARD_WORKER_INFLUX_TOKEN: not set" in result.output
