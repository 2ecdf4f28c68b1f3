"""Reading the Grafana provisioning files and the Flux queries embedded in them.

Grafana's InfluxDB (Flux) data source replaces the macros ``v.timeRangeStart``,
``v.timeRangeStop``, ``v.windowPeriod``, ``v.defaultBucket`` and ``v.organization``
textually before sending a query (dashboards additionally replace ``${variable}``);
:func:`bind` does the same so a query can run against a test server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "grafana" / "provisioning"
EXPR_UID = "__expr__"


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: top level must be a mapping"
    return data


def yaml_files(kind: str) -> list[Path]:
    return sorted(p for p in (PROVISIONING / kind).glob("*.y*ml"))


def alerting_docs() -> dict[Path, dict[str, Any]]:
    return {p: load_yaml(p) for p in yaml_files("alerting")}


def dashboard_files() -> list[Path]:
    out: list[Path] = []
    for provider_file in yaml_files("dashboards"):
        for provider in load_yaml(provider_file).get("providers") or []:
            mounted = str(provider["options"]["path"])
            # docker-compose.yml mounts grafana/provisioning at /etc/grafana/provisioning
            local = PROVISIONING / mounted.removeprefix("/etc/grafana/provisioning/")
            out += sorted(local.glob("*.json"))
    return out


@dataclass(frozen=True, slots=True)
class Query:
    """One Flux query found in a provisioning file."""

    where: str  # file and position, for messages
    text: str


def alert_queries() -> Iterator[Query]:
    for path, doc in alerting_docs().items():
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                for item in rule.get("data") or []:
                    if item.get("datasourceUid") == EXPR_UID:
                        continue
                    yield Query(f"{path.name}: rule {rule['uid']} query {item['refId']}",
                                str(item["model"]["query"]))


def dashboard_queries() -> Iterator[Query]:
    for path in dashboard_files():
        dash = json.loads(path.read_text(encoding="utf-8"))
        for var in (dash.get("templating") or {}).get("list") or []:
            if var.get("type") == "query":
                yield Query(f"{path.name}: variable {var['name']}", str(var["query"]))
        for panel in dash.get("panels") or []:
            for target in panel.get("targets") or []:
                yield Query(f"{path.name}: panel {panel['id']} ({panel['title']}) "
                            f"target {target['refId']}", str(target["query"]))


def all_queries() -> list[Query]:
    return [*alert_queries(), *dashboard_queries()]


def _rfc3339(t_ns: int) -> str:
    seconds, rem = divmod(t_ns, 1_000_000_000)
    return (datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            + f".{rem:09d}Z")


_BUCKET = re.compile(r'bucket: "([^"]+)"')
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def bind(query: str, *, start_ns: int, stop_ns: int, window: str = "1m",
         buckets: Mapping[str, str] | None = None, variables: Mapping[str, str] | None = None,
         org: str = "gridguard") -> str:
    """The query as Grafana would send it: macros and dashboard variables replaced,
    bucket names optionally mapped (to a test server's buckets)."""
    text = (query.replace("v.timeRangeStart", _rfc3339(start_ns))
            .replace("v.timeRangeStop", _rfc3339(stop_ns))
            .replace("v.windowPeriod", window)
            .replace("v.defaultBucket", '"raw"')
            .replace("v.organization", f'"{org}"'))
    if buckets:
        text = _BUCKET.sub(lambda m: f'bucket: "{buckets.get(m.group(1), m.group(1))}"', text)
    values = variables or {}

    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"query uses the dashboard variable {name!r}, which has no test value")
        return values[name]

    return _VARIABLE.sub(var, text)
