"""`gridguard config check` / `show-defaults` through a local typer app."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from collector.cli.config_cmd import register
from collector.config import load_config, parse_config
from tests.config.conftest import EXAMPLE

TOKEN = "5d41402abc4b2a76b9719d911017c592"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """gridguard (test app)"""

    register(app)
    return app


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    (tmp_path / "scenarios").mkdir(exist_ok=True)
    (tmp_path / "scenarios" / "demo.yaml").write_text("seed: 1\n", encoding="utf-8")
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_check_valid_prints_summary(app: typer.Typer, minimal: dict[str, Any],
                                    tmp_path: Path) -> None:
    (tmp_path / "tok").write_text(TOKEN, encoding="utf-8")
    (tmp_path / "tok").chmod(0o600)
    minimal["influx"] = {"enabled": True, "token_file": "tok"}
    result = CliRunner().invoke(app, ["config", "check", str(write(tmp_path, minimal))],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("Site: demo", "three_phase, 230 V", "Channels", "Circuits", "heat_pump",
                 "va, vb, vc", "Thresholds", "dip < 90 %", "49.5..50.5 Hz", "Integrations",
                 "configuration is valid"):
        assert text in out, text
    assert TOKEN not in out
    assert f"token file {tmp_path / 'tok'}" in out


def test_check_invalid_lists_problems_and_exits_1(app: typer.Typer, minimal: dict[str, Any],
                                                 tmp_path: Path) -> None:
    minimal["circuits"][0]["breaker_rating_a"] = -16
    minimal["circuits"][1]["current_channels"] = ["i_hp_a", "i_hp_b", "i_hp_x"]
    minimal["thresholds"] = {"thd_voltage_max_pc": 8}
    result = CliRunner().invoke(app, ["config", "check", str(write(tmp_path, minimal))])
    assert result.exit_code == 1
    out = result.output
    assert "invalid configuration (3 problems)" in out
    assert "  - circuits[0].breaker_rating_a: must be > 0, got -16 (line " in out
    assert "  - circuits[1].current_channels[2]: no such current channel" in out
    assert "  - thresholds.thd_voltage_max_pc: unknown key (did you mean " in out
    assert "Traceback" not in out
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_missing_secret_and_no_secrets_option(app: typer.Typer, minimal: dict[str, Any],
                                                   tmp_path: Path) -> None:
    minimal["influx"] = {"enabled": True, "token_env": "GG_TOKEN_THAT_IS_NOT_SET"}
    path = write(tmp_path, minimal)
    result = CliRunner().invoke(app, ["config", "check", str(path)],
                                env={"GG_TOKEN_THAT_IS_NOT_SET": None})
    assert result.exit_code == 1
    assert "influx.token_env: GG_TOKEN_THAT_IS_NOT_SET: environment variable is not set" in (
        result.output)
    result = CliRunner().invoke(app, ["config", "check", "--no-secrets", str(path)])
    assert result.exit_code == 0, result.output


def test_check_reports_missing_scenario(app: typer.Typer, minimal: dict[str, Any],
                                        tmp_path: Path) -> None:
    path = write(tmp_path, minimal)
    (tmp_path / "scenarios" / "demo.yaml").unlink()
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "source.simulated.scenario: no such file" in result.output


def test_check_yaml_syntax_error(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("site:\n  id: [demo\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:" in result.output
    assert "YAML syntax error" in result.output
    assert "Traceback" not in result.output


def test_strict_fails_on_warnings(app: typer.Typer, minimal: dict[str, Any],
                                  tmp_path: Path) -> None:
    minimal["system"]["nominal_voltage_v"] = 400  # line-to-line by mistake: warned
    path = write(tmp_path, minimal)
    result = CliRunner().invoke(app, ["config", "check", "-q", str(path)])
    assert result.exit_code == 0
    assert "system.nominal_voltage_v: is not a standard phase-to-neutral voltage" in result.output
    result = CliRunner().invoke(app, ["config", "check", "--strict", "-q", str(path)])
    assert result.exit_code == 1


def test_check_example(app: typer.Typer, tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "gridguard.yaml")
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "demo.yaml").write_text("seed: 1\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["config", "check", "--no-secrets", str(tmp_path / "gridguard.yaml")],
        env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "water_heater" in result.output


def test_show_defaults_is_a_valid_full_config(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["config", "show-defaults"])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.output)
    assert data["thresholds"]["voltage"]["dip_threshold_pct"] == 90.0
    assert data["influx"]["write"]["batch_size"] == 5000
    assert parse_config(data).circuits[0].id == "kitchen"


def test_show_defaults_of_a_file_masks_nothing_it_should_not(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["config", "show-defaults", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.output)
    assert data["influx"]["token_file"] == "/run/secrets/influx_collector_token"
    assert parse_config(data) == load_config(EXAMPLE, resolve_secrets=False)
