"""Secrets: three spellings, resolved after validation, never printed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import (
    ConfigError,
    SecretNotResolvedError,
    load_config,
    load_config_with_warnings,
    parse_config,
)
from collector.config.dump import to_yaml
from collector.config.secrets import placeholder_problem
from collector.config.summary import summary_text
from tests.config.conftest import EXAMPLE

INFLUX_TOKEN = "9f2c41d0e7b3a8c6d5e4f1029384756a"
SMTP_PASSWORD = "Tr0ub4dor&3-horse"
WEBHOOK_TOKEN = "b7e1c0d9f8a7e6d5c4b3a2f1e0d9c8b7"


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "gridguard.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def secret_file(path: Path, value: str, mode: int = 0o600) -> Path:
    path.write_text(value + "\n", encoding="utf-8")
    os.chmod(path, mode)
    return path


def with_secrets(minimal: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    secret_file(tmp_path / "influx_token", INFLUX_TOKEN)
    minimal["influx"] = {"enabled": True, "token_file": "influx_token"}  # relative to config
    minimal["alerts"] = {
        "webhook": {"enabled": True, "bearer_token_env": "GG_WEBHOOK"},
        "email": {"enabled": True, "smtp_host": "smtp.example.org", "username": "gg",
                  "password_env": "GG_SMTP", "from": "gg@example.org",
                  "to": ["ops@example.org"]},
    }
    return minimal


def test_env_and_file_secrets_resolve(minimal: dict[str, Any], tmp_path: Path) -> None:
    path = write(tmp_path, with_secrets(minimal, tmp_path))
    cfg = load_config(path, env={"GG_WEBHOOK": WEBHOOK_TOKEN, "GG_SMTP": SMTP_PASSWORD})
    assert cfg.influx.token is not None
    assert cfg.influx.token.get_secret_value() == INFLUX_TOKEN  # trailing newline stripped
    assert cfg.influx.token.file == tmp_path / "influx_token"
    assert cfg.alerts.webhook.bearer_token is not None
    assert cfg.alerts.webhook.bearer_token.get_secret_value() == WEBHOOK_TOKEN
    assert cfg.alerts.email.password is not None
    assert cfg.alerts.email.password.get_secret_value() == SMTP_PASSWORD


def test_secrets_never_printed(minimal: dict[str, Any], tmp_path: Path) -> None:
    path = write(tmp_path, with_secrets(minimal, tmp_path))
    cfg, warnings = load_config_with_warnings(
        path, env={"GG_WEBHOOK": WEBHOOK_TOKEN, "GG_SMTP": SMTP_PASSWORD})
    outputs = [repr(cfg), str(cfg), summary_text(cfg, warnings), to_yaml(cfg),
               cfg.model_dump_json(), repr(cfg.model_dump()), repr(cfg.influx.token)]
    for text in outputs:
        for secret in (INFLUX_TOKEN, WEBHOOK_TOKEN, SMTP_PASSWORD):
            assert secret not in text
    assert "file " + str(tmp_path / "influx_token") in summary_text(cfg)
    assert "env GG_WEBHOOK" in summary_text(cfg)


def test_inline_secret_is_masked_and_warned(minimal: dict[str, Any], tmp_path: Path) -> None:
    minimal["influx"] = {"enabled": True, "token": INFLUX_TOKEN}
    cfg, warnings = load_config_with_warnings(write(tmp_path, minimal))
    assert cfg.influx.token is not None
    assert cfg.influx.token.get_secret_value() == INFLUX_TOKEN
    assert [w.path for w in warnings] == ["influx.token"]
    assert "token_env or token_file" in warnings[0].message
    dumped = to_yaml(cfg)
    assert INFLUX_TOKEN not in dumped
    assert "token: '**********'" in dumped
    assert INFLUX_TOKEN not in summary_text(cfg, warnings)


def test_missing_file_and_env_are_all_reported(minimal: dict[str, Any], tmp_path: Path) -> None:
    minimal = with_secrets(minimal, tmp_path)
    minimal["influx"]["token_file"] = "/run/secrets/absent_token"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, minimal), env={})
    assert [p.path for p in info.value.problems] == [
        "influx.token_file", "alerts.webhook.bearer_token_env", "alerts.email.password_env"]
    assert str(info.value.problems[0]).startswith(
        "influx.token_file: /run/secrets/absent_token: no such file (line ")
    assert info.value.problems[1].message == "GG_WEBHOOK: environment variable is not set"


def test_placeholder_from_env_is_rejected(minimal: dict[str, Any], tmp_path: Path) -> None:
    path = write(tmp_path, with_secrets(minimal, tmp_path))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"GG_WEBHOOK": "my-super-secret-auth-token", "GG_SMTP": "admin"})
    messages = [str(p) for p in info.value.problems]
    assert messages[0].startswith("alerts.webhook.bearer_token_env: GG_WEBHOOK: the value is a "
                                  "known default or placeholder value")
    assert messages[1].startswith("alerts.email.password_env: GG_SMTP: the value is a known "
                                  "default or placeholder value")
    assert "admin" not in str(info.value)
    assert "super" not in str(info.value)


def test_secrets_of_disabled_sections_are_not_read(
    minimal: dict[str, Any], tmp_path: Path
) -> None:
    minimal["mqtt"] = {"enabled": False, "username": "gg", "password_env": "NOT_SET",
                       "control": {"enabled": True, "shared_secret_file": "/nope"}}
    cfg = load_config(write(tmp_path, minimal), env={})
    assert cfg.mqtt.password is not None
    assert not cfg.mqtt.password.is_resolved
    with pytest.raises(SecretNotResolvedError, match="env NOT_SET"):
        cfg.mqtt.password.get_secret_value()


def test_unresolved_secret_refuses_to_give_a_value(minimal: dict[str, Any]) -> None:
    minimal["influx"] = {"enabled": True, "token_env": "GG_INFLUX"}
    cfg = parse_config(minimal)
    assert cfg.influx.token is not None
    with pytest.raises(SecretNotResolvedError):
        cfg.influx.token.get_secret_value()


def test_world_readable_secret_file_warns(minimal: dict[str, Any], tmp_path: Path) -> None:
    secret_file(tmp_path / "tok", INFLUX_TOKEN, mode=0o644)
    minimal["influx"] = {"enabled": True, "token_file": str(tmp_path / "tok")}
    _, warnings = load_config_with_warnings(write(tmp_path, minimal))
    assert [w.path for w in warnings] == ["influx.token_file"]
    assert "mode 0644" in warnings[0].message


def test_example_secrets_resolve_from_files_and_env(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("/run/secrets/", f"{tmp_path}/")
    path = tmp_path / "gridguard.yaml"
    path.write_text(text, encoding="utf-8")
    secret_file(tmp_path / "influx_collector_token", INFLUX_TOKEN)
    secret_file(tmp_path / "webhook_token", WEBHOOK_TOKEN)
    cfg = load_config(path, env={"GRIDGUARD_SMTP_PASSWORD": SMTP_PASSWORD})
    assert cfg.influx.token is not None
    assert cfg.influx.token.get_secret_value() == INFLUX_TOKEN


@pytest.mark.parametrize("value", [
    "", "   ", "changeme", "Change-Me!", "admin", "password", "secret", "example",
    "<your-influx-token>", "xxxxxxxxxxxxxxxxxxxxxxxx", "my-super-secret-auth-token",
    "an-example-token-1234567890",
])
def test_placeholders(value: str) -> None:
    assert placeholder_problem(value, 16) is not None


def test_real_looking_values_pass() -> None:
    assert placeholder_problem(INFLUX_TOKEN, 16) is None
    assert placeholder_problem(SMTP_PASSWORD, 8) is None
    assert placeholder_problem("a1b2c3d4e5f6a7b", 16) == (
        "is shorter than 16 characters; generate a real one, e.g. `openssl rand -hex 32`")
