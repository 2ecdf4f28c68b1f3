"""Loading a configuration: YAML -> validation (no I/O) -> paths -> secrets (I/O).

``parse_config`` validates data and never touches the outside world.
``load_config`` reads the file, validates, makes relative paths absolute (relative
to the configuration file's directory) and then - the only I/O step - reads the
secrets from the environment and from files.
"""

from __future__ import annotations

import logging
import os
import stat
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from collector.config.advice import config_warnings
from collector.config.circuits import CircuitConfig
from collector.config.crosscheck import Sections, cross_check
from collector.config.errors import (
    ConfigError,
    ConfigProblem,
    Loc,
    dedupe,
    format_path,
    problems_from_validation_error,
    walk_loc,
)
from collector.config.models import GridGuardConfig
from collector.config.secrets import Secret, placeholder_problem
from collector.config.source import SourceType
from collector.config.yaml_loader import read_yaml

_log = logging.getLogger(__name__)


def parse_config(data: Mapping[str, Any], *, source: str = "<dict>") -> GridGuardConfig:
    """Validate configuration data (no I/O); raise ConfigError listing every problem."""
    return _parse(data, source=source, lines=None)


def _parse(data: Any, *, source: str, lines: Mapping[str, int] | None) -> GridGuardConfig:
    if not isinstance(data, Mapping):
        got = "an empty document" if data is None else type(data).__name__
        raise ConfigError(
            [ConfigProblem("", f"the configuration must be a mapping of sections, got {got}")],
            source=source,
        )
    data = dict(data)
    try:
        return GridGuardConfig.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation_error(exc, GridGuardConfig)
        problems += _cross_problems_of_valid_sections(data, exc)
        raise ConfigError(with_lines(dedupe(problems), lines), source=source) from None


def _cross_problems_of_valid_sections(
    data: dict[str, Any], exc: ValidationError
) -> list[ConfigProblem]:
    """Cross-section problems among the sections that validated.

    The top-level cross check only runs when every section is valid; running it here
    on the valid ones means a typo in `thresholds` does not hide a wrong channel id.
    """
    if any(not e["loc"] for e in exc.errors()):
        return []  # the cross check itself ran and failed: its problems are listed
    bad = {e["loc"][0] for e in exc.errors()}
    valid: dict[str, Any] = {}
    indices: tuple[int, ...] | None = None
    unvalidated: set[str] = set()
    for name, info in GridGuardConfig.model_fields.items():
        if name == "circuits" and name in bad and isinstance(data.get(name), list):
            # circuits are independent of each other: check the valid ones
            circuits, indices, unvalidated = _valid_items(data[name], CircuitConfig)
            valid[name] = circuits
        elif name in bad:
            valid[name] = None
        elif name in data and info.annotation is not None:
            try:
                valid[name] = TypeAdapter(info.annotation).validate_python(data[name])
            except ValidationError:
                valid[name] = None
        else:
            valid[name] = info.get_default(call_default_factory=True)
    located = cross_check(Sections(
        system=valid["system"], source=valid["source"], channels=valid["channels"],
        circuits=valid["circuits"], thresholds=valid["thresholds"],
        load_control=valid["load_control"], alerts=valid["alerts"],
        circuit_indices=indices, unvalidated_circuit_ids=frozenset(unvalidated),
    ))
    return [
        ConfigProblem(format_path(walk_loc(GridGuardConfig, p.loc).path), p.message, p.got)
        for p in located
    ]


def _valid_items(
    items: list[Any], model: type[CircuitConfig]
) -> tuple[tuple[CircuitConfig, ...], tuple[int, ...], set[str]]:
    """(valid items, their positions, raw ids of the invalid ones)."""
    valid: list[CircuitConfig] = []
    indices: list[int] = []
    unvalidated: set[str] = set()
    for k, item in enumerate(items):
        try:
            valid.append(model.model_validate(item))
            indices.append(k)
        except ValidationError:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                unvalidated.add(item["id"])
    return tuple(valid), tuple(indices), unvalidated


def with_lines(
    problems: list[ConfigProblem], lines: Mapping[str, int] | None
) -> list[ConfigProblem]:
    """Attach the YAML line of each problem's key (or of its nearest parent key)."""
    if not lines:
        return problems
    out = []
    for p in problems:
        path = p.path
        line = None
        while path and line is None:
            line = lines.get(path)
            # climb to the parent key: a missing key is reported where its parent is
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        out.append(ConfigProblem(p.path, p.message, p.got, line))
    return out


def read_config_file(path: Path) -> tuple[Any, dict[str, int]]:
    """Raw data and key lines of a YAML file; ConfigError for unreadable or bad YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), "no such file")], source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [ConfigProblem(str(path), f"cannot read: {exc}")], source=str(path)
        ) from None
    return read_yaml(text, source=str(path))


def load_config(
    path: Path, *, resolve_secrets: bool = True, env: Mapping[str, str] | None = None
) -> GridGuardConfig:
    """Read, validate and (by default) resolve the secrets of a configuration file.

    Relative paths in the file are made absolute against the file's directory.
    Warnings (inline secrets, sensor ranges...) are logged; raises ConfigError.
    """
    config, warnings = load_config_with_warnings(path, resolve_secrets=resolve_secrets, env=env)
    for w in warnings:
        _log.warning("%s: %s", path, w)
    return config


def load_config_with_warnings(
    path: Path, *, resolve_secrets: bool = True, env: Mapping[str, str] | None = None
) -> tuple[GridGuardConfig, tuple[ConfigProblem, ...]]:
    """Like :func:`load_config`, returning the warnings instead of logging them."""
    data, lines = read_config_file(path)
    config = _parse(data, source=str(path), lines=lines)
    config = resolve_paths(config, path.parent)
    warnings = list(with_lines(config_warnings(config), lines))
    if resolve_secrets:
        config, secret_warnings = resolve_config_secrets(
            config, env=os.environ if env is None else env, source=str(path), lines=lines
        )
        warnings += secret_warnings
    return config, tuple(warnings)


# --- rebuilding frozen models with some leaves replaced ------------------------------


def _map_tree(
    value: Any, loc: Loc, fn: Callable[[Loc, Any, bool], Any], active: bool = True
) -> Any:
    """Apply ``fn(loc, value, active)`` to every node below ``value``; copy only what
    changed. ``active`` is False below a section whose ``enabled`` is false."""
    value = fn(loc, value, active)
    if isinstance(value, BaseModel):
        active = active and getattr(value, "enabled", True) is not False
        changes = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _map_tree(old, (*loc, name), fn, active)
            if new is not old:
                changes[name] = new
        return value.model_copy(update=changes) if changes else value
    if isinstance(value, tuple):
        items = tuple(_map_tree(v, (*loc, k), fn, active) for k, v in enumerate(value))
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


def resolve_paths(config: GridGuardConfig, base_dir: Path) -> GridGuardConfig:
    """Make every relative path absolute against ``base_dir``; expand ``~``."""
    base = base_dir.expanduser().absolute()

    def absolute(_: Loc, value: Any, __: bool) -> Any:
        if isinstance(value, Path):
            p = value.expanduser()
            return p if p.is_absolute() else base / p
        return value

    result: GridGuardConfig = _map_tree(config, (), absolute)
    return result


def _secret_path(loc: Loc, secret: Secret) -> str:
    suffix = "_env" if secret.env is not None else "_file" if secret.file is not None else ""
    return format_path((*loc[:-1], f"{loc[-1]}{suffix}"))


def _read_secret(secret: Secret, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(value, problem) of an env/file secret."""
    if secret.env is not None:
        value = env.get(secret.env)
        if value is None:
            return None, f"{secret.env}: environment variable is not set"
        return value, None
    assert secret.file is not None
    f = secret.file
    try:
        return f.read_text(encoding="utf-8").strip(), None
    except FileNotFoundError:
        return None, f"{f}: no such file"
    except IsADirectoryError:
        return None, f"{f}: is a directory, not a file"
    except PermissionError:
        return None, f"{f}: permission denied (the service user must be able to read it)"
    except UnicodeDecodeError:
        return None, f"{f}: is not UTF-8 text"
    except OSError as exc:
        return None, f"{f}: cannot read ({exc.strerror})"


def resolve_config_secrets(
    config: GridGuardConfig,
    *,
    env: Mapping[str, str],
    source: str = "<config>",
    lines: Mapping[str, int] | None = None,
) -> tuple[GridGuardConfig, list[ConfigProblem]]:
    """Read every ``*_env``/``*_file`` secret of the enabled sections; ConfigError
    listing all that fail. Secrets of disabled sections stay unresolved."""
    problems: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []

    def resolve(loc: Loc, value: Any, active: bool) -> Any:
        if not isinstance(value, Secret) or value.is_inline or not active:
            return value
        path = _secret_path(loc, value)
        secret_value, problem = _read_secret(value, env)
        if problem is None and secret_value is not None:
            bad = placeholder_problem(secret_value, type(value).min_length)
            if bad is not None:
                where = value.env if value.env is not None else str(value.file)
                problem = f"{where}: the value {bad}"
        if problem is not None or secret_value is None:
            problems.append(ConfigProblem(path, problem or "could not be read"))
            return value
        if value.file is not None:
            mode = value.file.stat().st_mode
            if mode & stat.S_IROTH:
                warnings.append(ConfigProblem(
                    path, f"{value.file}: readable by every user (mode "
                    f"{stat.S_IMODE(mode):04o}); chmod 600 it or use a secrets mount",
                ))
        return value.resolved(secret_value)

    resolved: GridGuardConfig = _map_tree(config, (), resolve)
    if problems:
        raise ConfigError(with_lines(problems, lines), source=source)
    return resolved, with_lines(warnings, lines)


def check_environment(config: GridGuardConfig) -> list[ConfigProblem]:
    """Problems only the running machine can show: missing input files, unknown time
    zone. Used by ``gridguard config check``; reads the file system."""
    problems: list[ConfigProblem] = []
    try:
        zoneinfo.ZoneInfo(config.site.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(ConfigProblem(
            "site.timezone", "unknown time zone on this machine", repr(config.site.timezone)
        ))
    inputs: list[tuple[str, Path | None]] = []
    src = config.source
    if src.simulated is not None and src.type is SourceType.SIMULATED:
        inputs.append(("source.simulated.scenario", src.simulated.scenario))
    if src.replay is not None and src.type is SourceType.REPLAY:
        inputs.append(("source.replay.path", src.replay.path))
    for kind, k, ch in config.channels.all():
        if ch.calibration is not None:
            inputs.append((f"channels.{kind}[{k}].calibration.file", ch.calibration.file))
    if config.influx.enabled:
        inputs.append(("influx.ca_file", config.influx.ca_file))
    if config.mqtt.enabled and config.mqtt.tls is not None:
        for name in ("ca_file", "certfile", "keyfile"):
            inputs.append((f"mqtt.tls.{name}", getattr(config.mqtt.tls, name)))
    for key, p in inputs:
        if p is not None and not p.is_file():
            problems.append(ConfigProblem(
                key, "no such file" if not p.exists() else "is not a file", repr(str(p))
            ))
    return problems
