"""The Grafana provisioning files against the file format Grafana documents.

Required fields, per kind of file, as Grafana's provisioning reference lists them
(and as its file readers reject when missing):

* data sources and dashboard providers:
  https://grafana.com/docs/grafana/latest/administration/provisioning/
* alert rules, contact points, notification policies, mute timings:
  https://grafana.com/docs/grafana/latest/alerting/set-up/provision-alerting-resources/file-provisioning/

Then what makes a set of files work together: unique uids, and every reference
(rule -> data source, condition -> query, expression -> query, policy -> contact
point, policy -> mute timing, panel -> data source) resolving. Secrets must come
from the environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from collector.nomenclature import field_spec
from collector.rules import faults
from tests.grafana.provisioning import (
    EXPR_UID,
    PROVISIONING,
    alerting_docs,
    all_queries,
    dashboard_files,
    load_yaml,
    yaml_files,
)

DOC_PROVISIONING = "https://grafana.com/docs/grafana/latest/administration/provisioning/"
DOC_ALERTING = ("https://grafana.com/docs/grafana/latest/alerting/set-up/"
                "provision-alerting-resources/file-provisioning/")

# (path of keys inside one object, documented as required) per object kind.
REQUIRED: dict[str, tuple[str, tuple[str, ...]]] = {
    "datasource": (DOC_PROVISIONING, ("name", "type", "access", "url", "uid")),
    "dashboard provider": (DOC_PROVISIONING, ("name", "type", "options.path")),
    "rule group": (DOC_ALERTING, ("orgId", "name", "folder", "interval", "rules")),
    "rule": (DOC_ALERTING, ("uid", "title", "condition", "data", "noDataState",
                            "execErrState", "for")),
    "rule query": (DOC_ALERTING, ("refId", "datasourceUid", "model")),
    "contact point": (DOC_ALERTING, ("orgId", "name", "receivers")),
    "receiver": (DOC_ALERTING, ("uid", "type", "settings")),
    "policy": (DOC_ALERTING, ("orgId", "receiver")),
    "mute timing": (DOC_ALERTING, ("orgId", "name", "time_intervals")),
}
# Top-level keys Grafana reads from an alerting file (apiVersion 1).
ALERTING_KEYS = {"apiVersion", "groups", "deleteRules", "contactPoints", "deleteContactPoints",
                 "policies", "resetPolicies", "muteTimes", "deleteMuteTimes", "templates",
                 "deleteTemplates"}
NO_DATA_STATES = {"Alerting", "NoData", "OK", "KeepLast"}
EXEC_ERR_STATES = {"Alerting", "Error", "OK", "KeepLast"}
EXPRESSION_TYPES = {"math", "reduce", "resample", "classic_conditions", "threshold", "sql"}
REDUCERS = {"last", "mean", "min", "max", "sum", "count"}
MATCH_OPS = {"=", "!=", "=~", "!~"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
ENV_SECRET = re.compile(r"^\$__env\{[A-Z][A-Z0-9_]*\}$")
SECRET_KEYS = {"token", "password", "authorization_credentials", "basicAuthPassword",
               "apiKey", "api_key", "url_secret"}


def _get(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def _missing(kind: str, obj: dict[str, Any]) -> list[str]:
    doc, keys = REQUIRED[kind]
    return [f"{kind} {obj.get('uid') or obj.get('name') or obj}: required '{k}' missing "
            f"({doc})" for k in keys if _get(obj, k) in (None, "", [])]


def _rules() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    return [(p, g, r) for p, doc in alerting_docs().items()
            for g in doc.get("groups") or [] for r in g.get("rules") or []]


def _contact_points() -> list[dict[str, Any]]:
    return [cp for doc in alerting_docs().values() for cp in doc.get("contactPoints") or []]


def _datasources() -> list[dict[str, Any]]:
    return [ds for p in yaml_files("datasources") for ds in load_yaml(p).get("datasources") or []]


def _policies() -> list[dict[str, Any]]:
    return [pol for doc in alerting_docs().values() for pol in doc.get("policies") or []]


def _mute_timings() -> list[dict[str, Any]]:
    return [m for doc in alerting_docs().values() for m in doc.get("muteTimes") or []]


def _walk_routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    out = [route]
    for sub in route.get("routes") or []:
        out += _walk_routes(sub)
    return out


def test_the_expected_files_exist() -> None:
    assert yaml_files("datasources"), "no data source file"
    assert len(_rules()) >= 3
    assert _contact_points()
    assert _policies()
    assert _mute_timings()
    assert dashboard_files(), "no dashboard JSON under the provider's path"


def test_every_file_is_api_version_1_with_known_sections() -> None:
    for kind in ("datasources", "alerting", "dashboards"):
        for path in yaml_files(kind):
            doc = load_yaml(path)
            assert doc.get("apiVersion") == 1, f"{path}: apiVersion must be 1"
            if kind == "alerting":
                unknown = set(doc) - ALERTING_KEYS
                assert not unknown, f"{path}: keys Grafana does not read: {unknown}"


def test_required_fields_per_documented_schema() -> None:
    problems: list[str] = []
    for ds in _datasources():
        problems += _missing("datasource", ds)
    for path in yaml_files("dashboards"):
        for provider in load_yaml(path).get("providers") or []:
            problems += _missing("dashboard provider", provider)
    for doc in alerting_docs().values():
        for group in doc.get("groups") or []:
            problems += _missing("rule group", group)
            for rule in group.get("rules") or []:
                problems += _missing("rule", rule)
                for item in rule.get("data") or []:
                    problems += _missing("rule query", item)
                    if item.get("datasourceUid") != EXPR_UID and "relativeTimeRange" not in item:
                        problems.append(f"rule {rule.get('uid')} query {item.get('refId')}: "
                                        "a data source query needs relativeTimeRange")
    for cp in _contact_points():
        problems += _missing("contact point", cp)
        for receiver in cp.get("receivers") or []:
            problems += _missing("receiver", receiver)
    for policy in _policies():
        problems += _missing("policy", policy)
    for mute in _mute_timings():
        problems += _missing("mute timing", mute)
    assert not problems, "\n".join(problems)


def test_a_missing_required_field_is_reported() -> None:
    # the checker itself: a rule without a condition must not pass
    assert _missing("rule", {"uid": "x", "title": "t", "data": [{}], "noDataState": "OK",
                             "execErrState": "Error", "for": "0s"})


def test_uids_are_unique_and_valid() -> None:
    uids: list[str] = [str(r["uid"]) for _, _, r in _rules()]
    uids += [str(rc["uid"]) for cp in _contact_points() for rc in cp["receivers"]]
    uids += [str(ds["uid"]) for ds in _datasources()]
    uids += [str(json.loads(p.read_text())["uid"]) for p in dashboard_files()]
    assert len(uids) == len(set(uids)), sorted(u for u in uids if uids.count(u) > 1)
    for uid in uids:
        # Grafana: at most 40 characters of letters, digits, '-' and '_'
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid), uid
    names = [str(cp["name"]) for cp in _contact_points()]
    assert len(names) == len(set(names))


def test_rule_references_resolve() -> None:
    ds_uids = {str(ds["uid"]) for ds in _datasources()}
    for path, group, rule in _rules():
        where = f"{path.name}: {rule['uid']}"
        assert DURATION.match(str(group["interval"])), where
        assert DURATION.match(str(rule["for"])), where
        assert rule["noDataState"] in NO_DATA_STATES, where
        assert rule["execErrState"] in EXEC_ERR_STATES, where
        refs = [str(item["refId"]) for item in rule["data"]]
        assert len(refs) == len(set(refs)), where
        assert rule["condition"] in refs, f"{where}: condition {rule['condition']} is no refId"
        for item in rule["data"]:
            model = item["model"]
            assert model.get("refId") == item["refId"], f"{where}: model refId differs"
            if item["datasourceUid"] == EXPR_UID:
                assert model["type"] in EXPRESSION_TYPES, where
                assert model["expression"] in refs, f"{where}: expression {model['expression']}"
                assert model["expression"] != item["refId"], where
                if model["type"] == "reduce":
                    assert model["reducer"] in REDUCERS, where
            else:
                assert item["datasourceUid"] in ds_uids, f"{where}: unknown data source"
                assert model["datasource"]["uid"] == item["datasourceUid"], where
                rel = item["relativeTimeRange"]
                assert int(rel["from"]) > int(rel["to"]) >= 0, where
                assert str(model["query"]).strip(), where


def test_no_environment_expansion_in_titles_and_labels() -> None:
    # Grafana expands $VAR in titles and labels; annotations keep {{ $labels.x }}
    # and must not hold ${...} (expanded there too).
    for _, _, rule in _rules():
        assert "$" not in str(rule["title"]), rule["uid"]
        for key, value in (rule.get("labels") or {}).items():
            assert "$" not in f"{key}{value}", rule["uid"]
        for text in (rule.get("annotations") or {}).values():
            assert "${" not in str(text), rule["uid"]
            # every template variable used exists in the rule
            for ref in re.findall(r"\$values\.(\w+)", str(text)):
                assert ref in {str(i["refId"]) for i in rule["data"]}, (rule["uid"], ref)


def test_policies_reference_contact_points_and_mute_timings() -> None:
    receivers = {str(cp["name"]) for cp in _contact_points()}
    mutes = {str(m["name"]) for m in _mute_timings()}
    routes = [r for pol in _policies() for r in _walk_routes(pol)]
    assert routes
    for route in routes:
        if "receiver" in route:
            assert route["receiver"] in receivers, route
        for mute in route.get("mute_time_intervals") or []:
            assert mute in mutes, route
        for matcher in route.get("object_matchers") or []:
            assert len(matcher) == 3, matcher
            assert matcher[1] in MATCH_OPS, matcher
            if matcher[1] in ("=~", "!~"):
                re.compile(str(matcher[2]))
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                assert DURATION.match(str(route[key])), (key, route[key])


def test_policies_route_by_severity_and_circuit_on_labels_the_rules_produce() -> None:
    # fault and event series are grouped by these tags (the Flux group keys), so
    # they arrive as alert labels; rule labels add component (and severity for
    # the silent-collector rule)
    produced = set(faults.TAGS) | {"component"}
    matched = {m[0] for pol in _policies() for r in _walk_routes(pol)
               for m in r.get("object_matchers") or []}
    assert {"severity", "circuit"} <= matched
    assert matched <= produced, matched - produced
    severities = {str(m[2]) for pol in _policies() for r in _walk_routes(pol)
                  for m in r.get("object_matchers") or [] if m[0] == "severity"}
    assert any("critical" in s for s in severities)
    assert any("warning" in s for s in severities)


def test_mute_timings_are_valid_day_ranges() -> None:
    hhmm = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
    for mute in _mute_timings():
        for interval in mute["time_intervals"]:
            for span in interval.get("times") or []:
                start, end = span["start_time"], span["end_time"]
                assert hhmm.match(start), span
                assert hhmm.match(end), span
                assert start < end, f"{mute['name']}: {start}..{end} must not wrap midnight"


def test_secrets_only_from_the_environment() -> None:
    for ds in _datasources():
        for key, value in (ds.get("secureJsonData") or {}).items():
            assert ENV_SECRET.match(str(value)), f"datasource {ds['uid']}.{key}"
        assert "password" not in ds
        assert "basicAuthPassword" not in ds
    tok = _datasources()[0]["secureJsonData"]["token"]
    assert tok == "$__env{GRIDGUARD_GRAFANA_INFLUX_TOKEN}"
    for cp in _contact_points():
        for receiver in cp["receivers"]:
            for key, value in receiver["settings"].items():
                if key in SECRET_KEYS:
                    assert ENV_SECRET.match(str(value)), f"{receiver['uid']}.{key}"
    webhook = next(rc for cp in _contact_points() for rc in cp["receivers"]
                   if rc["type"] == "webhook")
    assert webhook["settings"]["authorization_scheme"] == "Bearer"
    assert ENV_SECRET.match(str(webhook["settings"]["url"]))
    # nothing that looks like an InfluxDB token (86 base64url characters) anywhere
    for path in PROVISIONING.rglob("*"):
        if path.is_file():
            assert not re.search(r"[A-Za-z0-9_-]{80,}==", path.read_text(errors="replace")), path


def test_dashboards_reference_the_data_source_and_nomenclature_fields() -> None:
    ds_uids = {str(ds["uid"]) for ds in _datasources()}
    fault_fields = set(faults.FIELDS)
    for path in dashboard_files():
        dash = json.loads(path.read_text(encoding="utf-8"))
        for key in ("uid", "title", "panels"):
            assert dash.get(key), (path, key)
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), path
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] in ds_uids, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in ds_uids, panel["title"]
    for query in all_queries():
        for name in re.findall(r'r\._field == "(\w+)"', query.text):
            if name not in fault_fields:
                field_spec(name)  # KeyError for a name not in collector.nomenclature
        for name in re.findall(r'r\._measurement == "(\w+)"', query.text):
            assert name in {"electrical", "polyphase", "harmonics", "events", "faults",
                            "health"}, (query.where, name)


@pytest.mark.parametrize("path", yaml_files("alerting") + yaml_files("datasources")
                         + yaml_files("dashboards"), ids=lambda p: p.name)
def test_files_are_plain_yaml_without_tabs(path: Path) -> None:
    assert "\t" not in path.read_text(encoding="utf-8")


def test_fault_rule_hands_value_and_threshold_to_the_worker() -> None:
    # collector/worker/grafana.py reads the annotations "value" and "threshold"
    # as plain numbers
    rule = next(r for _, _, r in _rules() if r["uid"] == "gridguard-fault-active")
    assert rule["annotations"]["value"] == "{{ $values.VB.Value }}"
    assert rule["annotations"]["threshold"] == "{{ $values.TB.Value }}"
