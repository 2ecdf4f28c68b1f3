"""The base model and the small validated types every config section uses."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from collector.model import Phase

SLUG_MAX_LEN = 64
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Deliberately simple: catches obvious mistakes without an email-validator dependency.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Raspberry Pi 5 40-pin header: BCM GPIO 0..27 (the RP1 keeps the BCM numbering).
GPIO_MAX = 27


class StrictModel(BaseModel):
    """Frozen, typo-proof base: unknown keys are errors, instances never change.

    Secret fields (typed as a ``Secret`` subclass) accept the three spellings
    ``name``, ``name_env`` and ``name_file`` in the input; they are folded into one
    ``Secret`` here so every model gets that for free.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        validate_default=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_secret_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        from collector.config.secrets import secret_field_names

        names = secret_field_names(cls)
        if not names:
            return data
        data = dict(data)
        for name in names:
            parts: dict[str, Any] = {}
            if name in data:
                inline = data.pop(name)
                if isinstance(inline, dict):
                    parts.update(inline)
                elif inline is not None:
                    parts["value"] = inline
            for suffix in ("env", "file"):
                key = f"{name}_{suffix}"
                if key in data:
                    parts[suffix] = data.pop(key)
            if parts:
                data[name] = parts
        return data


def _check_slug(value: str) -> str:
    if len(value) > SLUG_MAX_LEN or not _SLUG.match(value):
        raise ValueError(
            "must be a slug: lowercase letters, digits, '_' or '-', starting with a "
            f"letter or digit, at most {SLUG_MAX_LEN} characters"
        )
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError("must be an environment variable name (letters, digits, '_')")
    return value


def _check_gpio(value: int) -> int:
    if not 0 <= value <= GPIO_MAX:
        raise ValueError(f"must be a BCM GPIO number 0..{GPIO_MAX} (40-pin header)")
    return value


def _norm_phase(value: Any) -> Any:
    # Electricians write L1/L2/L3 as often as A/B/C; both mean the same conductor.
    if isinstance(value, str):
        v = value.strip().upper()
        return {"L1": "A", "L2": "B", "L3": "C", "PE": "G"}.get(v, v)
    return value


def _parse_hhmm(value: Any) -> Any:
    if isinstance(value, str):
        m = _HHMM.match(value.strip())
        if not m:
            raise ValueError("must be a time of day 'HH:MM' (00:00..23:59)")
        return time(int(m.group(1)), int(m.group(2)))
    return value


def _check_e164(value: str) -> str:
    if not _E164.match(value):
        raise ValueError("must be a phone number in E.164 form, e.g. '+4915112345678'")
    return value


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an email address like 'ops@example.org'")
    return value


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/:]+(:\d{1,5})?(/\S*)?$", value):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


def _int_from_hex(value: Any) -> Any:
    # I2C addresses are written 0x48 in datasheets; accept that as a string too.
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            return value
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]
EnvVarName = Annotated[str, AfterValidator(_check_env_name)]
GpioPin = Annotated[int, AfterValidator(_check_gpio)]
PhaseName = Annotated[Phase, BeforeValidator(_norm_phase)]
TimeOfDay = Annotated[time, BeforeValidator(_parse_hhmm)]
PhoneNumber = Annotated[str, AfterValidator(_check_e164)]
EmailAddress = Annotated[str, AfterValidator(_check_email)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
HexInt = Annotated[int, BeforeValidator(_int_from_hex)]


def is_phone(value: str) -> bool:
    return bool(_E164.match(value))


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))
