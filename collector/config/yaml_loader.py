"""Reading configuration YAML safely: YAML 1.2 numbers, no duplicate keys, key lines.

PyYAML implements YAML 1.1, where ``22:00`` is the integer 1320 (base 60) and
``030`` is the octal 24 - both plausible in this configuration (tariff times, the
SCT-013-030 part number). This loader resolves numbers the YAML 1.2 way without
base 60, and keeps decimals with a leading zero as text, so both stay strings. It
also rejects duplicate keys, where PyYAML would silently let the last one win.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from collector.config.errors import ConfigError, ConfigProblem, Loc, format_path

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
# Numbers as in YAML 1.2 (plus '_' separators, as PyYAML allows), except that a
# decimal with a leading zero (`030`, `07`) stays text: it is a part number or a
# code far more often than a number here, and YAML 1.1 would read it as octal.
_DEC = r"(?:0|[1-9][0-9_]*)"
_INT_12 = re.compile(rf"^(?:[-+]?{_DEC}|0o[0-7_]+|0x[0-9a-fA-F_]+)$")
_FLOAT_12 = re.compile(
    rf"^(?:[-+]?{_DEC}?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    rf"|[-+]?{_DEC}\.?(?:[eE][-+]?[0-9]+)"
    rf"|[-+]?{_DEC}\."
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 number resolution and duplicate-key errors."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value != "<<":
                key = key_node.value
                if key in seen:
                    raise ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key '{key}' (first at line {seen[key]})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int_12(self, node: ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        if text.startswith("0o"):
            return int(text[2:], 8)
        return int(text, 0) if text.startswith(("0x", "0X")) else int(text)

    def construct_yaml_float_12(self, node: ScalarNode) -> float:
        text = str(self.construct_scalar(node)).replace("_", "").lower()
        if text.endswith(".inf"):
            return float("-inf") if text.startswith("-") else float("inf")
        if text.endswith(".nan"):
            return float("nan")
        return float(text)


# A copy without the YAML 1.1 int/float resolvers (the base class's dict stays untouched).
ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(_INT_TAG, _INT_12, list("-+0123456789"))
ConfigLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_12, list("-+0123456789."))
ConfigLoader.add_constructor(_INT_TAG, ConfigLoader.construct_yaml_int_12)
ConfigLoader.add_constructor(_FLOAT_TAG, ConfigLoader.construct_yaml_float_12)


def _key_lines(node: Node | None, loc: Loc, out: dict[str, int]) -> None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                here = (*loc, key_node.value)
                out.setdefault(format_path(here), key_node.start_mark.line + 1)
                _key_lines(value_node, here, out)
    elif isinstance(node, SequenceNode):
        for k, item in enumerate(node.value):
            here = (*loc, k)
            out.setdefault(format_path(here), item.start_mark.line + 1)
            _key_lines(item, here, out)


def read_yaml(text: str, *, source: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML text; return the data and a map from key path to 1-based line.

    Raises ConfigError naming ``source`` and the line for syntax errors.
    """
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.context_mark and exc.context_mark is not mark:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise ConfigError(
            [ConfigProblem(where, f"YAML syntax error: {what}")], source=source
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            [ConfigProblem(source, f"YAML error: {exc}")], source=source
        ) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    _key_lines(node, (), lines)
    return data, lines


def dump_yaml(data: Any) -> str:
    """YAML text of plain data in key order, readable by :func:`read_yaml`."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
