"""Configuration problems and the one place pydantic's errors become readable ones.

Every problem is reported as ``key.path[2].name: <what was wrong>, got <value>``:
the path is the one the user wrote in YAML (discriminator tags and the internal
secret sub-model are folded away), the value is shown unless it may be a secret.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]

# Error type of the custom error that carries several located problems at once;
# model validators use it so that one check pass reports every problem it finds.
PROBLEMS_ERROR_TYPE = "gridguard_problems"

# Key names whose values must never be echoed back, even when they are misspelt
# (an unknown key `tokne: abc...` is still somebody's token).
_SENSITIVE_KEY_PARTS = ("token", "password", "secret", "auth")


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with (or worth a warning about) a configuration.

    ``path`` is the YAML key path (``channels.current[2].sensor.zero_v``), ``got``
    the offending value already formatted for display (None: nothing to show),
    ``line`` the 1-based line in the YAML file when known.
    """

    path: str
    message: str
    got: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.got is not None:
            text += f", got {self.got}"
        if self.line is not None:
            text += f" (line {self.line})"
        return text


class ConfigError(Exception):
    """An invalid configuration; the message lists every problem found, one per line."""

    def __init__(self, problems: Sequence[ConfigProblem], *, source: str = "<config>") -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        self.source = source
        n = len(self.problems)
        lines = [f"{source}: invalid configuration ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class SecretNotResolvedError(RuntimeError):
    """A secret given by ``*_env``/``*_file`` was used before ``load_config`` resolved it."""


@dataclass(frozen=True, slots=True)
class LocatedProblem:
    """A problem found by a model-level check, located relative to that model."""

    loc: Loc
    message: str
    got: str | None = None


def problems_error(problems: Sequence[LocatedProblem]) -> PydanticCustomError:
    """Wrap located problems in one pydantic error so a validator can report them all."""
    summary = "; ".join(
        f"{format_path(p.loc) or '(here)'}: {p.message}" + (f", got {p.got}" if p.got else "")
        for p in problems
    )
    return PydanticCustomError(
        PROBLEMS_ERROR_TYPE,
        "{summary}",
        {"summary": summary, "problems": [(p.loc, p.message, p.got) for p in problems]},
    )


def format_path(loc: Iterable[str | int]) -> str:
    """``('channels', 'current', 2, 'id')`` -> ``channels.current[2].id``."""
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else str(seg)
    return out


def format_value(value: object, limit: int = 80) -> str:
    """A value as the user would have written it, shortened for an error line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, Enum):
        text = repr(value.value)
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))  # 0.0 reads as 0, as the user most likely wrote it
    elif isinstance(value, str | int | float):
        text = repr(value)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {format_value(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(format_value(v, limit) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_sensitive_key(key: str) -> bool:
    """True for key names that may hold a secret value (not for `*_env`/`*_file` references)."""
    lowered = key.lower()
    if lowered.endswith(("_env", "_file")):
        return False
    return any(part in lowered for part in _SENSITIVE_KEY_PARTS)


# --- walking the model types along an error location -------------------------------


def _strip(tp: Any) -> Any:
    """Remove Annotated wrappers and None from a type; keep a real union as a tuple."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        members = [_strip(a) for a in get_args(tp) if a is not type(None)]
        flat: list[Any] = []
        for m in members:
            flat.extend(m if isinstance(m, tuple) else (m,))
        return flat[0] if len(flat) == 1 else tuple(flat)
    return tp


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not typing.Literal:
        return None
    args = get_args(field.annotation)
    return str(args[0]) if args else None


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _is_secret(tp: Any) -> bool:
    # Imported lazily: secrets.py builds on this module.
    from collector.config.secrets import Secret

    return isinstance(tp, type) and issubclass(tp, Secret)


@dataclass(frozen=True, slots=True)
class _Walked:
    path: tuple[str | int, ...]
    hide_value: bool
    model: Any  # the model class at the end of the path (for key suggestions), or None
    union_tags: tuple[str, ...]  # tags of a discriminated union at the end of the path


def walk_loc(root: type[BaseModel], loc: Loc) -> _Walked:
    """Translate a pydantic location into the YAML key path the user wrote."""
    tp: Any = root
    out: list[str | int] = []
    hide = False
    for seg in loc:
        tp = _strip(tp)
        if isinstance(tp, tuple) and isinstance(seg, str):
            # a discriminated union: pydantic puts the tag in the location
            member = next((m for m in tp if _is_model(m) and _tag_of(m) == seg), None)
            if member is not None:
                tp = member
                continue
            tp = None
        if _is_secret(tp) and isinstance(seg, str) and seg in ("value", "env", "file"):
            # `token: {env: X}` is how the model stores what the user wrote as `token_env: X`
            if out and isinstance(out[-1], str) and seg != "value":
                out[-1] = f"{out[-1]}_{seg}"
            hide = seg == "value"
            tp = None
            continue
        out.append(seg)
        if isinstance(seg, int):
            origin = get_origin(tp)
            if origin in (tuple, list):
                args = [a for a in get_args(tp) if a is not Ellipsis]
                tp = args[0] if args else None
            else:
                tp = None
        elif _is_model(tp):
            tp = _field(tp, seg)
            hide = _is_secret(_strip(tp))
        else:
            tp = None
    tp = _strip(tp)
    tags: tuple[str, ...] = ()
    if isinstance(tp, tuple):
        tags = tuple(t for m in tp if _is_model(m) and (t := _tag_of(m)) is not None)
    return _Walked(tuple(out), hide, tp if _is_model(tp) else None, tags)


# --- messages ------------------------------------------------------------------------

_SIMPLE_MESSAGES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (quote it in YAML)",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "iterable_type": "must be a list",
    "path_type": "must be a file system path",
    "time_type": "must be a time of day like '06:30'",
    "time_parsing": "must be a time of day like '06:30'",
}


def _allowed_keys(model: Any) -> list[str]:
    """Keys a model accepts, with the `_env`/`_file` spellings of its secrets."""
    if not _is_model(model):
        return []
    from collector.config.secrets import secret_type

    allowed: list[str] = []
    for name, info in model.model_fields.items():
        shown = info.alias or name
        if secret_type(info.annotation) is not None:
            allowed += [shown, f"{shown}_env", f"{shown}_file"]
        else:
            allowed.append(shown)
    return allowed


def _closest(key: str, model: Any) -> str | None:
    close = difflib.get_close_matches(key, _allowed_keys(model), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggest(key: str, model: Any) -> str:
    if not _is_model(model):
        return ""
    allowed = _allowed_keys(model)
    close = _closest(key, model)
    if close:
        return f" (did you mean '{close}'?)"
    return f" (allowed: {', '.join(allowed)})" if len(allowed) <= 12 else ""


def _message(err: ErrorDetails, walked: _Walked, parent: _Walked) -> tuple[str, bool]:
    """(message, whether to show the input value)."""
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    if kind in _SIMPLE_MESSAGES:
        return _SIMPLE_MESSAGES[kind], True
    if kind == "missing":
        return "is required", False
    if kind == "extra_forbidden":
        key = walked.path[-1] if walked.path else ""
        return "unknown key" + _suggest(str(key), parent.model), True
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {format_value(bound)}", True
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', 'one of the allowed values')}", True
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return ("must not be empty" if n == 1 else f"must be at least {n} characters"), True
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters", True
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"must have at least {n} item{'s' if n != 1 else ''}", True
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"must have at most {n} item{'s' if n != 1 else ''}", True
    if kind in ("value_error", "assertion_error"):
        error = ctx.get("error")
        return (str(error) if error is not None else err["msg"]), True
    msg = err["msg"]
    return (msg[:1].lower() + msg[1:]), True


def problems_from_validation_error(
    exc: ValidationError, root: type[BaseModel], prefix: Loc = ()
) -> list[ConfigProblem]:
    """Translate every pydantic error into a ConfigProblem with the YAML key path."""
    problems: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc: Loc = prefix + tuple(err["loc"])
        if err["type"] == PROBLEMS_ERROR_TYPE:
            for sub_loc, message, got in (err.get("ctx") or {})["problems"]:
                walked = walk_loc(root, loc + tuple(sub_loc))
                problems.append(ConfigProblem(format_path(walked.path), message, got))
            continue
        walked = walk_loc(root, loc)
        parent = walk_loc(root, loc[:-1]) if loc else walked
        path = walked.path
        value: Any = err.get("input")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, "type")
            tags = ", ".join(repr(t) for t in walked.union_tags)
            if err["type"] == "union_tag_invalid":
                message, show = f"must be one of {tags}", True
                value = (err.get("ctx") or {}).get("tag")
            else:
                message, show = f"is required to say which kind this is (one of {tags})", False
        elif err["type"].startswith("secret_"):
            message, show = err["msg"], False
            if err["type"] == "secret_sources":
                name = str(path[-1]) if path else "secret"
                message = f"give exactly one of {name}, {name}_env or {name}_file"
        else:
            message, show = _message(err, walked, parent)
        last = path[-1] if path else ""
        hide = walked.hide_value or (isinstance(last, str) and is_sensitive_key(last))
        if err["type"] == "extra_forbidden" and isinstance(last, str):
            # a misspelt secret key (`tokne`) still holds the secret
            close = _closest(last, parent.model)
            hide = hide or (close is not None and is_sensitive_key(close))
        got = format_value(value) if show and not hide else None
        if show and hide:
            message += " (value hidden)"
        problems.append(ConfigProblem(format_path(path), message, got))
    return problems


def dedupe(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[tuple[str, str]] = set()
    out: list[ConfigProblem] = []
    for p in problems:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(p)
    return out
