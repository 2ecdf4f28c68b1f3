"""Secrets in the configuration: given inline, by environment variable or by file.

A secret field ``token`` accepts exactly one of ``token: <value>`` (allowed, warned
about), ``token_env: VAR`` or ``token_file: /run/secrets/x``. Validation checks
only what it can see without I/O (the inline value, the variable name); the
variable or file is read by :func:`collector.config.load.load_config` afterwards.
Values live in :class:`pydantic.SecretStr` so they never appear in ``repr``, logs
or dumps.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from collector.config.base import EnvVarName, StrictModel
from collector.config.errors import SecretNotResolvedError

# Defaults shipped by vendors and tutorials, and words people type when asked for
# a password. Compared after lower-casing and dropping everything but letters and
# digits, so "Change-Me!" and "CHANGEME" both match.
_KNOWN_PLACEHOLDERS = frozenset({
    "changeme", "admin", "administrator", "password", "passw0rd", "password1",
    "password123", "secret", "example", "token", "default", "test", "testing", "pass",
    "root", "guest", "letmein", "qwerty", "123456", "12345678", "123456789",
    "1234567890", "gridguard", "influxdb", "influx", "grafana", "mosquitto", "mqtt",
    "homeassistant", "twilio", "none", "null", "todo", "fixme", "xxx",
})
# Substrings that mark a value copied from documentation rather than generated.
_PLACEHOLDER_MARKERS = (
    "changeme", "example", "placeholder", "replaceme", "yourtoken", "yourpassword",
    "yoursecret", "supersecret", "insertyour", "putyour", "dummy",
)
_GENERATE_HINT = "generate a real one, e.g. `openssl rand -hex 32`"


def placeholder_problem(value: str, min_length: int) -> str | None:
    """Why ``value`` is unacceptable as a secret, or None when it is acceptable."""
    stripped = value.strip()
    if not stripped:
        return f"is empty; {_GENERATE_HINT}"
    normal = re.sub(r"[^a-z0-9]", "", stripped.lower())
    if (
        normal in _KNOWN_PLACEHOLDERS
        or any(marker in normal for marker in _PLACEHOLDER_MARKERS)
        or len(set(stripped)) == 1
        or (stripped.startswith("<") and stripped.endswith(">"))
    ):
        return f"is a known default or placeholder value; {_GENERATE_HINT}"
    if len(stripped) < min_length:
        return f"is shorter than {min_length} characters; {_GENERATE_HINT}"
    return None


class Secret(StrictModel):
    """A secret: exactly one of an inline ``value``, an ``env`` variable or a ``file``.

    After :func:`collector.config.load.load_config` resolved it, ``value`` holds the
    secret and ``env``/``file`` still say where it came from.
    """

    min_length: ClassVar[int] = 1
    kind: ClassVar[str] = "secret"

    value: SecretStr | None = None
    env: EnvVarName | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        given = [n for n in ("value", "env", "file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise PydanticCustomError("secret_sources", "give exactly one source of the secret")
        if self.value is not None:
            problem = placeholder_problem(self.value.get_secret_value(), self.min_length)
            if problem is not None:
                raise PydanticCustomError("secret_placeholder", problem)
        return self

    @property
    def origin(self) -> str:
        """Where the secret comes from, safe to print (``env INFLUX_TOKEN``)."""
        if self.env is not None:
            return f"env {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "inline"

    @property
    def is_inline(self) -> bool:
        return self.env is None and self.file is None

    @property
    def is_resolved(self) -> bool:
        return self.value is not None

    def get_secret_value(self) -> str:
        """The secret itself (same name as on :class:`pydantic.SecretStr`)."""
        if self.value is None:
            raise SecretNotResolvedError(
                f"secret from {self.origin} has not been read; load the configuration "
                "with load_config(..., resolve_secrets=True)"
            )
        return self.value.get_secret_value()

    def resolved(self, value: str) -> Self:
        """A copy holding ``value``, keeping where it came from (no validation: the
        loader checks the value itself and reports problems with the key path)."""
        return self.model_copy(update={"value": SecretStr(value)})

    def __repr__(self) -> str:
        state = "resolved" if self.is_resolved else "unresolved"
        return f"{type(self).__name__}({self.origin}, {state})"

    __str__ = __repr__


class TokenSecret(Secret):
    """An API token or shared secret: machine-generated, so at least 16 characters."""

    min_length: ClassVar[int] = 16
    kind: ClassVar[str] = "token"


class PasswordSecret(Secret):
    """A password (SMTP, MQTT broker) that may be chosen by a person or a provider."""

    min_length: ClassVar[int] = 8
    kind: ClassVar[str] = "password"


def secret_type(annotation: Any) -> type[Secret] | None:
    """The Secret subclass in a field annotation (``TokenSecret | None``), if any."""
    tp = annotation
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        tp = members[0] if len(members) == 1 else None
    if isinstance(tp, type) and issubclass(tp, Secret):
        return tp
    return None


def secret_field_names(model: type[BaseModel]) -> tuple[str, ...]:
    """Names of the secret fields of a model class."""
    return tuple(
        name for name, info in model.model_fields.items() if secret_type(info.annotation)
    )
