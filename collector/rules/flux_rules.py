"""One Flux task per fault rule, generated from the config (see :mod:`.rule_table`).

Every task has the same shape:

1. **values** - rows (``_time``, ``_value``, ``circuit``, ``phase``) per series, read
   from the raw bucket: single records for sustained rules, else one row per
   window (mean, quadratic mean, standard deviation, a ratio of means);
2. **levels** - each row gets level 0 (inside), 1 (warning threshold crossed) or 2
   (critical threshold crossed); sustained rules count a row only once the
   condition has held for ``sustain_s`` (``stateDuration`` plus one record, since a
   record covers the time after its stamp);
3. **now** - per series, the highest level of the task period and the worst value
   at that level;
4. **before** - per series, the severities whose last ``faults`` record in the
   events bucket is ``active``;
5. **transitions** - a ``faults`` record only where the two differ: ``active`` for a
   new severity, ``resolved`` for one that no longer holds.

A series without data in the period keeps its state: no data is not "cleared".
``now()`` is the run's scheduled time, so a forced run over past data judges that
past period (the tests and ``backfill`` rely on it).

``python -m collector.rules.flux_rules`` writes the tasks of the example config to
``influx/rules/`` (a test fails when they are stale), for review and static checks.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.influx_admin.queries import flux_string
from collector.rules import faults
from collector.rules.rule_table import (
    Aggregate,
    Direction,
    Input,
    Rule,
    RuleContext,
    RuleSet,
    Series,
    rules_from_config,
)

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "influx" / "rules"
EXAMPLE_CONFIG = REPO / "config" / "gridguard.example.yaml"

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RuleTask:
    """A generated task: its name, Flux text and description."""

    rule: Rule
    name: str
    flux: str
    description: str


def task_prefix(site: str, name_prefix: str = "gridguard") -> str:
    """Name prefix of the rule tasks of one site.

    Site ids are slugs (no ``/``), so no site's prefix is a prefix of another's.
    """
    return f"{name_prefix}-rule/{site}/"


def task_name(site: str, rule: Rule, name_prefix: str = "gridguard") -> str:
    return task_prefix(site, name_prefix) + rule.type.value


# -- Flux literals ---------------------------------------------------------------


def flux_float(x: float) -> str:
    """A Flux float literal (always with a decimal point)."""
    if not math.isfinite(x):
        raise ValueError(f"threshold: must be finite, got {x!r}")
    text = repr(float(x))
    return text if ("." in text or "e" in text) else text + ".0"


def flux_duration(seconds: float) -> str:
    """A Flux duration literal in whole milliseconds (``90s``, ``1500ms``)."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"duration: must be positive, got {seconds!r} s")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _dict(name: str, pairs: Iterable[tuple[str, str]]) -> str:
    items = ", ".join(f"{{key: {flux_string(k)}, value: {v}}}" for k, v in pairs)
    return f"{name} = dict.fromList(pairs: [{items}])"


def _any_equal(column: str, values: Sequence[str]) -> str:
    # Equality chains (not contains()) so InfluxDB pushes the filter to storage.
    parts = [f"r.{column} == {flux_string(v)}" for v in values]
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _series_filter(series: Sequence[Series]) -> str:
    if all(s.phase is None for s in series):
        return _any_equal("circuit", [s.circuit for s in series])
    parts = [
        f"r.circuit == {flux_string(s.circuit)}" if s.phase is None
        else f"(r.circuit == {flux_string(s.circuit)} and r.phase == {flux_string(s.phase)})"
        for s in series
    ]
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


# -- the pieces of a task ----------------------------------------------------------


def _lookback_s(rule: Rule, ctx: RuleContext) -> float:
    """How far before the period start the values stage must read [s]."""
    if rule.input is Input.DEMAND:
        return max(0.0, rule.window_s - rule.every_s)
    if rule.sustained:
        # A run that ends in the period may have started up to sustain_s earlier.
        return max(lim.sustain_s for lim in rule.limits) + ctx.record_s
    return 0.0


def _source(rule: Rule, ctx: RuleContext, fields: str, measurement: str | None = None) -> str:
    start = rule.every_s + _lookback_s(rule, ctx)
    if rule.input is Input.DEMAND:
        start = rule.window_s
    meas = measurement or f"r._measurement == {flux_string(rule.measurement)}"
    return (
        f"from(bucket: {flux_string(ctx.raw_bucket)})\n"
        f"    |> range(start: -{flux_duration(start)})\n"
        f"    |> filter(fn: (r) => {meas} and r.site == site)\n"
        f"    |> filter(fn: (r) => {_any_equal('interval', ctx.intervals)})\n"
        f"    |> filter(fn: (r) => {fields})\n"
        f"    |> filter(fn: (r) => {_series_filter(rule.series)})"
    )


def _window(rule: Rule, fn: Aggregate | None = None) -> str:
    agg = fn or rule.aggregate
    name = {Aggregate.MEAN: "mean", Aggregate.QUADRATIC_MEAN: "quadraticMean",
            Aggregate.STDDEV: "stddev"}[agg]
    return (f"    |> aggregateWindow(every: {flux_duration(rule.window_s)}, fn: {name}, "
            'timeSrc: "_start", createEmpty: false)')


_BY_SERIES = '    |> group(columns: ["circuit", "phase"])\n    |> sort(columns: ["_time"])'
_KEEP = '    |> keep(columns: ["_time", "_value", "circuit", "phase"])'


def _values(rule: Rule, ctx: RuleContext) -> str:
    """Flux of the ``values`` stream."""
    field = f"r._field == {flux_string(rule.field)}"
    if rule.input is Input.FIELD:
        out = [_source(rule, ctx, field), _KEEP, _BY_SERIES]
        if rule.absolute:
            # Export is as much a load on the circuit as import.
            out.append("    |> map(fn: (r) => ({r with _value: math.abs(x: r._value)}))")
        if rule.aggregate is not Aggregate.NONE:
            out.append(_window(rule))
            if rule.aggregate is Aggregate.STDDEV:
                # One record in a window has no spread (stddev is null then).
                out.append("    |> filter(fn: (r) => exists r._value)")
        return "values = " + "\n".join(out)
    if rule.input is Input.MERGED:
        phase = flux_string(rule.merged_phase or "")
        return "values = " + "\n".join([
            _source(rule, ctx, field), _KEEP, "    |> group()",
            f"    |> map(fn: (r) => ({{r with circuit: {flux_string(faults.SYSTEM_CIRCUIT)}, "
            f"phase: {phase}}}))",
            _BY_SERIES, _window(rule),
        ])
    if rule.input is Input.DEMAND:
        phase = flux_string(rule.merged_phase or "")
        return "values = " + "\n".join([
            _source(rule, ctx, field), _KEEP, _BY_SERIES,
            "    |> mean()",
            "    |> group()",
            "    |> sum()",
            f"    |> map(fn: (r) => ({{_time: now(), _value: r._value, "
            f"circuit: {flux_string(faults.SYSTEM_CIRCUIT)}, phase: {phase}}}))",
            _BY_SERIES,
        ])
    # Two quantities per window, then pivoted side by side: the rule's value and
    # the gate (S for the power factor and current unbalance, I for current THD).
    assert rule.gate_field is not None
    assert rule.gate_measurement is not None
    gate = flux_string(rule.gate_field)
    if rule.input is Input.POWER_FACTOR:
        fields = '(r._field == "power_active_w" or r._field == "power_apparent_va")'
        measurement = None
        value = "math.abs(x: r.power_active_w) / r.power_apparent_va"
        value_field = "power_active_w"
    else:
        fields = f"({field} or r._field == {gate})"
        measurement = (f"((r._measurement == {flux_string(rule.measurement)} and {field}) or "
                       f"(r._measurement == {flux_string(rule.gate_measurement)} and "
                       f"r._field == {gate}))")
        value = f"r.{rule.field}"
        value_field = rule.field
    src = _source(rule, ctx, fields, measurement)
    keep = '    |> keep(columns: ["_time", "_value", "_field", "circuit", "phase"])'
    group = '    |> group(columns: ["circuit", "phase", "_field"])\n    |> sort(columns: ["_time"])'
    agg_value = rule.aggregate if rule.input is Input.GATED else Aggregate.MEAN
    return "\n".join([
        f"raw = {src}\n{keep}\n{group}",
        f"valueWindows = raw\n    |> filter(fn: (r) => r._field == {flux_string(value_field)})\n"
        + _window(rule, agg_value),
        f"gateWindows = raw\n    |> filter(fn: (r) => r._field == {gate})\n"
        + _window(rule, Aggregate.MEAN),
        "values = union(tables: [valueWindows, gateWindows])\n"
        '    |> group(columns: ["circuit", "phase"])\n'
        '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        f"    |> filter(fn: (r) => exists r.{value_field} and exists r.{rule.gate_field})\n"
        f"    |> filter(fn: (r) => r.{rule.gate_field} > 0.0 and r.{rule.gate_field} >= "
        "dict.get(dict: gate, key: r.circuit, default: 0.0))\n"
        f"    |> map(fn: (r) => ({{_time: r._time, circuit: r.circuit, phase: r.phase, "
        f"_value: {value}}}))\n"
        + _BY_SERIES,
    ])


def _windows_fn(rule: Rule) -> str | None:
    """``inWindow(r)``: whether a row lies in its circuit's local time windows."""
    timed = [lim for lim in rule.limits if lim.windows_min]
    if not timed:
        return None
    branches = []
    for lim in timed:
        conds = []
        for start, end in lim.windows_min:
            if start < end:
                conds.append(f"(m >= {start} and m < {end})")
            else:  # over midnight
                conds.append(f"(m >= {start} or m < {end})")
        branches.append(f"if r.circuit == {flux_string(lim.key)} then {' or '.join(conds)}")
    body = "\n        else ".join(branches) + "\n        else true"
    return (
        "inWindow = (r) => {\n"
        "    m = date.hour(t: r._time, location: siteLocation) * 60\n"
        "        + date.minute(t: r._time, location: siteLocation)\n\n"
        f"    return {body}\n"
        "}"
    )


def _levels(rule: Rule, ctx: RuleContext) -> str:
    op = ">" if rule.direction is Direction.ABOVE else "<"
    in_win = "inWindow(r: r) and " if _windows_fn(rule) else ""
    out = ["levels = values",
           "    |> map(fn: (r) => ({r with x1: dict.get(dict: warning, key: r.circuit, "
           "default: 0.0),",
           "        x2: dict.get(dict: critical, key: r.circuit, default: 0.0)}))"]
    if rule.sustained:
        out.append(f"    |> stateDuration(fn: (r) => {in_win}r._value {op} r.x1, column: \"d1\", "
                   "unit: 1ms)")
        if rule.has_critical:
            out.append(f"    |> stateDuration(fn: (r) => {in_win}r._value {op} r.x2, "
                       'column: "d2", unit: 1ms)')
        # A record covers the time after its stamp: n consecutive records cover
        # (last - first) + one record.
        out.append("    |> map(fn: (r) => ({r with need: dict.get(dict: sustainMs, "
                   f"key: r.circuit, default: 0) - {round(ctx.record_s * 1000)}}}))")
        l2 = "r.d2 >= 0 and r.d2 >= r.need"
        l1 = "r.d1 >= 0 and r.d1 >= r.need"
    else:
        l2 = f"{in_win}r._value {op} r.x2"
        l1 = f"{in_win}r._value {op} r.x1"
    level = (f"if {l2} then 2 else if {l1} then 1 else 0" if rule.has_critical
             else f"if {l1} then 1 else 0")
    out.append(f"    |> map(fn: (r) => ({{r with level: {level}}}))")
    out.append("    |> filter(fn: (r) => r._time >= periodStart)")
    return "\n".join(out)


def _now_stage(rule: Rule) -> str:
    worse = ">" if rule.direction is Direction.ABOVE else "<"
    return (
        "nowState = levels\n"
        "    |> reduce(\n"
        "        identity: {level: -1, value: 0.0},\n"
        "        fn: (r, accumulator) => ({\n"
        "            level: if r.level > accumulator.level then r.level else accumulator.level,\n"
        "            value: if r.level > accumulator.level or (r.level == accumulator.level and "
        f"r._value {worse} accumulator.value) then r._value else accumulator.value,\n"
        "        }),\n"
        "    )\n"
        '    |> group(columns: ["circuit", "phase"])\n'
        "    |> map(fn: (r) => ({circuit: r.circuit, phase: r.phase, seen: 1, level: r.level, "
        "value: r.value, was_warning: 0, was_critical: 0}))"
    )


def _before_stage(ctx: RuleContext) -> str:
    return (
        f"before = from(bucket: {flux_string(ctx.events_bucket)})\n"
        f"    |> range(start: -{ctx.lookback_days}d)\n"
        f"    |> filter(fn: (r) => r._measurement == {flux_string(faults.MEASUREMENT)} and "
        "r.site == site and r.type == faultType)\n"
        f"    |> filter(fn: (r) => r._field == {flux_string(faults.STATE_FIELD)})\n"
        '    |> group(columns: ["circuit", "phase", "severity"])\n'
        "    |> last()\n"
        f"    |> filter(fn: (r) => r._value == {flux_string(faults.FaultState.ACTIVE.value)})\n"
        '    |> group(columns: ["circuit", "phase"])\n'
        "    |> map(fn: (r) => ({circuit: r.circuit, phase: r.phase, seen: 0, level: 0, "
        "value: 0.0,\n"
        '        was_warning: if r.severity == "warning" then 1 else 0,\n'
        '        was_critical: if r.severity == "critical" then 1 else 0}))'
    )


def _record(severity: str, state: faults.FaultState, threshold: str) -> str:
    return (
        "    |> map(fn: (r) => ({_time: now(), "
        f"_measurement: {flux_string(faults.MEASUREMENT)}, site: site, circuit: r.circuit, "
        f"phase: r.phase, type: faultType, severity: {severity}, "
        f"state: {flux_string(state.value)}, value: r.value, threshold: {threshold}, "
        "unit: unit}))"
    )


def _transitions(ctx: RuleContext) -> str:
    x1 = "dict.get(dict: warning, key: r.circuit, default: 0.0)"
    x2 = "dict.get(dict: critical, key: r.circuit, default: 0.0)"
    sev1 = 'dict.get(dict: warningSeverity, key: r.circuit, default: "warning")'
    active, resolved = faults.FaultState.ACTIVE, faults.FaultState.RESOLVED
    tags = "[" + ", ".join(flux_string(t) for t in faults.TAGS) + "]"
    fields = ", ".join(f"{f}: r.{f}" for f in faults.FIELDS)
    return "\n".join([
        "transitions = union(tables: [nowState, before])",
        '    |> group(columns: ["circuit", "phase"])',
        "    |> reduce(",
        "        identity: {seen: 0, level: 0, value: 0.0, was_warning: 0, was_critical: 0},",
        "        fn: (r, accumulator) => ({",
        "            seen: accumulator.seen + r.seen,",
        "            level: accumulator.level + r.level,",
        "            value: accumulator.value + r.value,",
        "            was_warning: accumulator.was_warning + r.was_warning,",
        "            was_critical: accumulator.was_critical + r.was_critical,",
        "        }),",
        "    )",
        "    |> filter(fn: (r) => r.seen > 0)",
        f'    |> map(fn: (r) => ({{r with severity: if r.level == 2 then "critical" '
        f'else if r.level == 1 then {sev1} else ""}}))',
        "",
        "// A new severity: active.",
        "raised = transitions",
        '    |> filter(fn: (r) => (r.severity == "warning" and r.was_warning == 0)',
        '        or (r.severity == "critical" and r.was_critical == 0))',
        _record("r.severity", active, f"if r.level == 2 then {x2} else {x1}"),
        "",
        "// A severity that no longer holds: resolved (the threshold it was held against).",
        "clearedWarning = transitions",
        '    |> filter(fn: (r) => r.was_warning > 0 and r.severity != "warning")',
        _record('"warning"', resolved, x1),
        "clearedCritical = transitions",
        '    |> filter(fn: (r) => r.was_critical > 0 and r.severity != "critical")',
        _record('"critical"', resolved, f'if {sev1} == "critical" then {x1} else {x2}'),
        "",
        "union(tables: [raised, clearedWarning, clearedCritical])",
        "    |> group()",
        f"    |> to(bucket: {flux_string(ctx.events_bucket)}, tagColumns: {tags},",
        f"        fieldFn: (r) => ({{{fields}}}))",
    ])


def _header(rule: Rule, ctx: RuleContext, name: str) -> list[str]:
    sev = {lim.key: lim.warning_severity.value for lim in rule.limits}
    lines = [
        f"// GridGuard fault rule {rule.type.value}: {rule.title}.",
        "// GENERATED by `gridguard influx sync` from the config (collector/rules): edit the",
        "// config or the generator, not this text.",
        f"// Basis: {rule.basis}.",
        f"// Unit: {rule.unit or '1'}; a fault when the value is {rule.direction.value} "
        "the threshold.",
        "// key: warning / critical threshold, severity of the warning level"
        + (", sustain" if rule.sustained else ""),
    ]
    for lim in rule.limits:
        crit = "-" if lim.critical is None else f"{lim.critical:g}"
        extra = f", {lim.sustain_s:g} s" if rule.sustained else ""
        lines.append(f"//   {lim.key}: {lim.warning:g} / {crit}, {sev[lim.key]}{extra}")
    lines.append(f'option task = {{name: {flux_string(name)}, every: '
                 f'{flux_duration(rule.every_s)}, offset: {flux_duration(rule.offset_s)}}}')
    return lines


def render_task(rule: Rule, ctx: RuleContext, name: str) -> str:
    """The complete Flux text of the task ``name`` for ``rule``."""
    if not rule.limits or not rule.series:
        raise ValueError(f"rule {rule.type.value}: needs at least one series and one limit")
    windows = _windows_fn(rule)
    imports = ['import "dict"']
    if (rule.input is Input.POWER_FACTOR or rule.aggregate is Aggregate.QUADRATIC_MEAN
            or rule.absolute):
        imports.append('import "math"')
    if windows:
        imports += ['import "date"', 'import "timezone"']
    out = [*imports, "", *_header(rule, ctx, name), ""]
    out += [
        f"site = {flux_string(ctx.site)}",
        f"faultType = {flux_string(rule.type.value)}",
        f"unit = {flux_string(rule.unit)}",
        "// The period this run judges: [now - every, now).",
        f"periodStart = time(v: int(v: now()) - {rule.every_s * NS_PER_S})",
    ]
    if windows:
        out.append(f"siteLocation = timezone.location(name: {flux_string(ctx.timezone)})")
    out += [
        _dict("warning", ((lim.key, flux_float(lim.warning)) for lim in rule.limits)),
        _dict("critical", ((lim.key, flux_float(lim.critical if lim.critical is not None
                                                 else lim.warning)) for lim in rule.limits)),
        _dict("warningSeverity",
              ((lim.key, flux_string(lim.warning_severity.value)) for lim in rule.limits)),
    ]
    if rule.sustained:
        out.append(_dict("sustainMs", ((lim.key, str(round(lim.sustain_s * 1000)))
                                        for lim in rule.limits)))
    if rule.gate_field is not None:
        out.append(_dict("gate", ((lim.key, flux_float(lim.gate or 0.0))
                                  for lim in rule.limits)))
    if rule.aggregate is Aggregate.QUADRATIC_MEAN:
        out += [
            "",
            "// IEC 61000-4-30 §4.5 aggregation: the square root of the mean of the squares.",
            "quadraticMean = (column=\"_value\", tables=<-) => tables",
            "    |> map(fn: (r) => ({r with _value: r._value * r._value}))",
            "    |> mean(column: column)",
            "    |> map(fn: (r) => ({r with _value: math.sqrt(x: r._value)}))",
        ]
    if windows:
        out += ["", windows]
    out += ["", _values(rule, ctx), "", _levels(rule, ctx), "", _now_stage(rule), "",
            _before_stage(ctx), "", _transitions(ctx)]
    return "\n".join(out) + "\n"


def describe(rule: Rule) -> str:
    return (f"GridGuard fault rule {rule.type.value}: {rule.title} "
            "(managed by gridguard influx sync)")


def rule_tasks(rule_set: RuleSet, name_prefix: str = "gridguard") -> tuple[RuleTask, ...]:
    """Every task of a rule set, named ``<prefix>-rule/<site>/<type>``."""
    out = []
    for rule in rule_set.rules:
        name = task_name(rule_set.context.site, rule, name_prefix)
        out.append(RuleTask(rule, name, render_task(rule, rule_set.context, name), describe(rule)))
    return tuple(out)


def tasks_from_config(cfg: Any, name_prefix: str = "gridguard") -> tuple[RuleTask, ...]:
    return rule_tasks(rules_from_config(cfg), name_prefix)


def main(argv: list[str]) -> int:
    """Write the tasks of the example config to influx/rules (``--check``: only compare)."""
    from collector.config.load import load_config

    check = "--check" in argv
    cfg = load_config(EXAMPLE_CONFIG, resolve_secrets=False)
    stale: list[str] = []
    expected: set[Path] = set()
    for task in tasks_from_config(cfg):
        path = RULES_DIR / f"{task.rule.type.value}.flux"
        expected.add(path)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != task.flux:
            stale.append(str(path))
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(task.flux, encoding="utf-8")
    for path in sorted(RULES_DIR.glob("*.flux")):
        if path not in expected:
            stale.append(f"{path} (no such rule)")
            if not check:
                path.unlink()
    for name in stale:
        print(("stale: " if check else "wrote ") + name)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
