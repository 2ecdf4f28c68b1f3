"""The configuration reference (every key, type, default, meaning) generated from the models.

``python -m collector.config.reference`` prints it as Markdown;
``python -m collector.config.reference --write docs/configuration.md`` replaces the
generated part of that file (between the BEGIN/END markers). A test keeps the
committed document equal to the output.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import dataclass
from datetime import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from collector.config.models import GridGuardConfig
from collector.config.secrets import Secret, secret_type
from collector.config.sensors import (
    Acs712Sensor,
    DirectSensor,
    DividerSensor,
    Sct013Sensor,
    Zmpt101bSensor,
)

BEGIN = "<!-- BEGIN GENERATED REFERENCE (python -m collector.config.reference --write) -->"
END = "<!-- END GENERATED REFERENCE -->"

SENSOR_MODELS: tuple[type[BaseModel], ...] = (
    Acs712Sensor, Sct013Sensor, Zmpt101bSensor, DividerSensor, DirectSensor,
)
# Defaults that depend on other keys; the schema marks these fields required.
DERIVED_DEFAULTS = {
    (Acs712Sensor, "sensitivity_v_per_a"): "from variant",
    (Sct013Sensor, "volts_per_amp"): "derived",
}


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    type: str
    default: str
    meaning: str


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(type without Annotated/None, whether None is allowed)."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    nullable = False
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        nullable = len(args) < len(get_args(tp))
        tp = args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
        while get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
    return tp, nullable


def _union_models(tp: Any) -> tuple[type[BaseModel], ...]:
    if get_origin(tp) in (Union, types.UnionType):
        members = []
        for a in get_args(tp):
            inner, _ = _unwrap(a)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                members.append(inner)
        return tuple(members)
    return ()


def _type_name(tp: Any) -> str:
    tp, nullable = _unwrap(tp)
    suffix = " or null" if nullable else ""
    origin = get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in get_args(tp)) + suffix
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in tp) + suffix
    if origin in (tuple, list):
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}" + suffix
        return "[" + ", ".join(_type_name(a) for a in args) + "]" + suffix
    if _union_models(tp):
        tags = [_tag(m) for m in _union_models(tp)]
        return "sensor: " + ", ".join(f"`{t}`" for t in tags) + suffix
    names = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path",
             time: "time `'HH:MM'`"}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping" + suffix
    return names.get(tp, getattr(tp, "__name__", str(tp))) + suffix


def _tag(model: type[BaseModel]) -> str:
    args = get_args(model.model_fields["type"].annotation)
    return str(args[0])


def _constraints(info: FieldInfo) -> str:
    parts = []
    for m in info.metadata:
        if isinstance(m, annotated_types.Gt):
            parts.append(f"> {_fmt(m.gt)}")
        elif isinstance(m, annotated_types.Ge):
            parts.append(f"≥ {_fmt(m.ge)}")
        elif isinstance(m, annotated_types.Lt):
            parts.append(f"< {_fmt(m.lt)}")
        elif isinstance(m, annotated_types.Le):
            parts.append(f"≤ {_fmt(m.le)}")
        elif isinstance(m, annotated_types.MinLen) and m.min_length > 1:
            parts.append(f"≥ {m.min_length} items")
        elif isinstance(m, annotated_types.MaxLen):
            parts.append(f"≤ {m.max_length} items")
    return (", " + ", ".join(parts)) if parts else ""


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, Enum):
        return str(v.value)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _default(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    if (model, name) in DERIVED_DEFAULTS:
        return DERIVED_DEFAULTS[(model, name)]
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.get_default(call_default_factory=True)
        return "(mapping)" if isinstance(value, BaseModel) else f"`{_fmt(value)}`"
    return f"`{_fmt(info.default)}`"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_rows(model: type[BaseModel], prefix: str = "") -> list[Row]:
    """Rows for every key of ``model``, nested mappings and lists flattened."""
    rows: list[Row] = []
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        meaning = _escape(info.description or "")
        default = _default(model, name, info)
        secret = secret_type(info.annotation)
        if secret is not None:
            rows.append(Row(
                f"`{key}` / `{key}_env` / `{key}_file`",
                f"secret ({secret.kind}, ≥ {secret.min_length} characters)",
                default, meaning,
            ))
            continue
        tp, _ = _unwrap(info.annotation)
        rows.append(Row(f"`{key}`", _type_name(info.annotation) + _constraints(info),
                        default, meaning))
        if _union_models(tp):
            continue  # sensors: documented once, in their own table
        if isinstance(tp, type) and issubclass(tp, BaseModel) and not issubclass(tp, Secret):
            rows += model_rows(tp, key + ".")
        elif get_origin(tp) is tuple:
            item, _ = _unwrap(get_args(tp)[0])
            if isinstance(item, type) and issubclass(item, BaseModel):
                rows += model_rows(item, key + "[].")
    return rows


def _table(rows: list[Row]) -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| {r.key} | {r.type} | {r.default} | {r.meaning} |" for r in rows]
    return "\n".join(lines)


def markdown() -> str:
    """The generated reference, one table per top-level section and per sensor type."""
    out = []
    for name, info in GridGuardConfig.model_fields.items():
        required = "required" if info.is_required() else "optional"
        out.append(f"### `{name}` ({required})\n\n{_escape(info.description or '')}\n")
        tp, _ = _unwrap(info.annotation)
        if get_origin(tp) is tuple:
            tp, _ = _unwrap(get_args(tp)[0])
            prefix = f"{name}[]."
        else:
            prefix = f"{name}."
        out.append(_table(model_rows(tp, prefix)) + "\n")
    out.append("### Sensors\n\nThe `sensor` of a channel, chosen by its `type`. Voltage "
               "channels take `zmpt101b`, `divider`, `direct`; current and residual channels "
               "take `acs712`, `sct013`, `direct`.\n")
    for model in SENSOR_MODELS:
        doc = (model.__doc__ or "").strip().splitlines()[0]
        out.append(f"#### `type: {_tag(model)}`\n\n{doc}\n")
        out.append(_table(model_rows(model, "sensor.")) + "\n")
    return "\n".join(out)


def replace_generated(document: str, generated: str) -> str:
    """``document`` with the text between the markers replaced by ``generated``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"document: markers {BEGIN!r} ... {END!r} not found")
    return document[: start + len(BEGIN)] + "\n\n" + generated + "\n" + document[end:]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", type=Path, help="update the generated part of this file")
    args = parser.parse_args(argv)
    text = markdown()
    if args.write is None:
        print(text)
        return
    path: Path = args.write
    path.write_text(replace_generated(path.read_text(encoding="utf-8"), text), encoding="utf-8")


if __name__ == "__main__":
    main()
