"""Configuration back to plain data / YAML, in the spelling a user writes.

Secrets come out as ``name_env`` / ``name_file`` references, or masked when they
were inline; enums as their values, paths as strings, times as 'HH:MM'.
"""

from __future__ import annotations

import hashlib
from datetime import time
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from collector.config.secrets import Secret
from collector.config.yaml_loader import dump_yaml

MASK = "**********"
SecretMode = Literal["mask", "fingerprint"]


def _secret_items(key: str, secret: Secret, mode: SecretMode) -> dict[str, Any]:
    if mode == "fingerprint":
        # diffing needs to see a changed value without holding it in plain text
        value = secret.value.get_secret_value() if secret.value is not None else ""
        digest = hashlib.sha256(value.encode()).hexdigest()[:16] if value else None
        return {f"{key}": {"origin": secret.origin, "sha256": digest}}
    if secret.env is not None:
        return {f"{key}_env": secret.env}
    if secret.file is not None:
        return {f"{key}_file": str(secret.file)}
    return {key: MASK}


def _value(v: Any, mode: SecretMode) -> Any:
    if isinstance(v, BaseModel):
        return to_data(v, secrets=mode)
    if isinstance(v, tuple | list):
        return [_value(x, mode) for x in v]
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, time):
        return v.strftime("%H:%M")
    if isinstance(v, SecretStr):
        return MASK
    return v


def to_data(model: BaseModel, *, secrets: SecretMode = "mask") -> dict[str, Any]:
    """Plain data (dicts, lists, scalars) of a config model, every default filled in."""
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        v = getattr(model, name)
        if isinstance(v, Secret):
            out.update(_secret_items(key, v, secrets))
        else:
            out[key] = _value(v, secrets)
    return out


def to_yaml(model: BaseModel) -> str:
    """YAML text of a config model (secrets as references or masked)."""
    return dump_yaml(to_data(model))
