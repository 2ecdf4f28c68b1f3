"""Metrics and events as InfluxDB line protocol, with names only from the nomenclature.

Policy (documented in influx/README.md and docs/storage.md):

* Precision is milliseconds (``PRECISION``). The finest record is the basic
  interval (10/12 cycles, ~200 ms) and events are refreshed every half cycle
  (10 ms at 50 Hz), so 1 ms keeps every record distinct in its series while
  shortening every line by six digits and letting TSM's timestamp encoding pack
  the (synchronised, hence irregular) times tighter. Times are floored to the
  millisecond, so a stored time never lies after the instant it labels.
* A field whose value is None is omitted: "not available" is never a number.
* NaN and +/-inf are dropped field by field, each drop reported as a
  :class:`Dropped` (the sink logs and counts them); the other fields of the point
  are written.
* Every number is written as a float field (``3`` becomes ``3.0``): the type of a
  field then depends on its name only, never on whether the DSP happened to hand
  over an ``int`` or a ``float``, so a field type conflict (which makes InfluxDB
  reject points) cannot arise from our own data.
* Booleans are boolean fields, strings (``calibration_id``) string fields.
* Field names must be in :mod:`collector.nomenclature`; unknown names are dropped
  with a reason, so a typo can never create a new field. Each field goes to the
  measurement the nomenclature assigns it (harmonic groups to ``harmonics``,
  unbalance to ``polyphase``, writer statistics to ``health``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from collector.model import Event, Metrics
from collector.nomenclature import (
    FIELDS,
    HARMONIC_MAX_ORDER,
    Measurement,
    Tag,
    field_spec,
    harmonic_field,
)

PRECISION = "ms"
"""Timestamp precision of every line we write (the ``precision`` write parameter)."""

NS_PER_MS = 1_000_000

FieldValue = float | int | bool | str | None

# Interval records: the measurements a Metrics record may feed. Events and faults
# have their own messages (Event) or writers (Flux tasks, rule worker).
_METRICS_MEASUREMENTS = (
    Measurement.ELECTRICAL,
    Measurement.HARMONICS,
    Measurement.POLYPHASE,
    Measurement.HEALTH,
)
_INTERVAL_MEASUREMENTS = frozenset(
    {Measurement.ELECTRICAL, Measurement.HARMONICS, Measurement.POLYPHASE}
)
def _field_measurements() -> Mapping[str, Measurement]:
    names = [f.name for f in FIELDS] + [
        harmonic_field(q, n) for q in ("voltage", "current")
        for n in range(1, HARMONIC_MAX_ORDER + 1)
    ]
    for name in names:
        # Nomenclature names are identifiers, so the encoder can skip escaping them.
        assert escape_key(name) == name, name
    return MappingProxyType({name: field_spec(name).measurement for name in names})


FLAGGED_FIELD = "flagged"
CATEGORY_FIELD = "category"


@dataclass(frozen=True, slots=True)
class Dropped:
    """A field or point that was not written, and why."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class Encoded:
    """Lines ready to send (no trailing newline) and what was left out."""

    lines: tuple[str, ...]
    dropped: tuple[Dropped, ...] = ()


def timestamp_ms(time_ns: int) -> int:
    """Integer nanoseconds since the epoch floored to milliseconds."""
    return int(time_ns) // NS_PER_MS


def _escape(text: str, specials: str) -> str:
    # InfluxDB 2.7 keeps backslashes in names and tag values literally (it does not
    # read "\\" as one backslash), so only the separators are escaped; text with a
    # backslash is refused before it gets here (see _tag_value_problem).
    out = text
    for ch in specials:
        out = out.replace(ch, "\\" + ch)
    return out


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas and spaces)."""
    return _escape(name, ", ")


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces)."""
    return _escape(text, ",= ")


def escape_string_field(text: str) -> str:
    """Escape the inside of a quoted string field value (double quotes, backslashes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


_FIELD_MEASUREMENT: Mapping[str, Measurement] = _field_measurements()
"""Field name -> measurement for every nomenclature name (harmonics included); immutable."""

_ELECTRICAL, _HARMONICS, _POLYPHASE = (
    _METRICS_MEASUREMENTS.index(m)
    for m in (Measurement.ELECTRICAL, Measurement.HARMONICS, Measurement.POLYPHASE))
_METRICS_ROUTE: Mapping[str, int] = MappingProxyType({
    name: _METRICS_MEASUREMENTS.index(measurement)
    for name, measurement in _FIELD_MEASUREMENT.items()
    if measurement in _METRICS_MEASUREMENTS and name != FLAGGED_FIELD
})
"""Field name -> index in ``_METRICS_MEASUREMENTS``, for every field a Metrics record
may carry except ``flagged`` (merged with ``Metrics.flagged``, not written as given)."""
_METRICS_HEADS = tuple(escape_measurement(m.value) for m in _METRICS_MEASUREMENTS)
_FLAG_TEXT = (f"{FLAGGED_FIELD}=false", f"{FLAGGED_FIELD}=true")
_PLAIN_STRING = re.compile(r'[^"\\\n\r]*')
"""A string field value that needs no escaping and has no line break."""
_INTERVAL_BITS = sum(1 << _METRICS_MEASUREMENTS.index(m) for m in _INTERVAL_MEASUREMENTS)
assert _FIELD_MEASUREMENT[FLAGGED_FIELD] is Measurement.ELECTRICAL
# _metrics_tags writes the tags in this order, which is sorted by key
assert sorted([Tag.SITE, Tag.CIRCUIT, Tag.PHASE, Tag.INTERVAL]) == [
    Tag.CIRCUIT, Tag.INTERVAL, Tag.PHASE, Tag.SITE]


def format_field_value(value: float | int | bool | str) -> str:
    """Line-protocol text of one field value; raises ValueError for what cannot be stored."""
    if type(value) is float and value - value == 0.0:
        # Hot path (finite Python float: inf - inf and nan - nan are nan).
        return repr(value)
    if isinstance(value, bool | np.bool_):
        return "true" if bool(value) else "false"
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise ValueError(f"string contains a line break: {value!r}")
        return '"' + escape_string_field(value) + '"'
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"non-finite number {number!r}")
        # repr is the shortest text that parses back to the same double.
        return repr(number)
    raise ValueError(f"unsupported value type {type(value).__name__}")


def _tag_value_problem(value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return f"tag value {value!r} contains a line break"
    if "\\" in value:
        # A trailing backslash escapes the separator after it and InfluxDB 2.7
        # answers "invalid tag format"; no escape sequence stores one reliably.
        return f"tag value {value!r} contains a backslash"
    return None


def _tag_section(tags: Mapping[str, str | None]) -> tuple[str, str | None]:
    """``,key=value`` for each tag sorted by key (None/empty omitted), or a problem."""
    parts: list[str] = []
    for key in sorted(tags):
        value = tags[key]
        if not value:
            continue
        if not value.isalnum():  # fast path: letters and digits need no escaping
            problem = _tag_value_problem(value)
            if problem is not None:
                return "", problem
            value = escape_key(value)
        parts.append(f",{key if key.isalnum() else escape_key(key)}={value}")
    return "".join(parts), None


def encode_line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue],
    time_ns: int,
) -> tuple[str | None, list[Dropped]]:
    """One point as a line (None when no field is left), plus the dropped fields.

    Tags whose value is None or empty are omitted (line protocol has no empty tag
    values); tags are written sorted by key, as InfluxDB recommends.
    """
    tag_text, problem = _tag_section(tags)
    if problem is not None:
        return None, [Dropped(f"{measurement} point", problem)]
    dropped: list[Dropped] = []
    field_parts: list[str] = []
    for name, value in fields.items():
        if value is None:
            continue
        if type(value) is float and value - value == 0.0:
            text = repr(value)  # hot path, inlined: a finite Python float
        else:
            try:
                text = format_field_value(value)
            except ValueError as exc:
                dropped.append(Dropped(f"{measurement}.{name}", str(exc)))
                continue
        key = name if name in _FIELD_MEASUREMENT else escape_key(name)
        field_parts.append(f"{key}={text}")
    if not field_parts:
        return None, dropped
    head = escape_measurement(measurement) + tag_text
    return f"{head} {','.join(field_parts)} {timestamp_ms(time_ns)}", dropped


def _measurement_of(name: str) -> Measurement | None:
    found = _FIELD_MEASUREMENT.get(name)
    if found is not None:
        return found
    try:  # a name added to the nomenclature after this table was built
        return field_spec(name).measurement
    except KeyError:
        return None


def _describe(m: Metrics) -> str:
    return f"circuit={m.channel} interval={m.interval}"


def encode_metrics(m: Metrics, site: str) -> Encoded:
    """Lines for one Metrics record: one per measurement its fields belong to.

    The interval flag (IEC 61000-4-30) goes to ``electrical`` as the boolean field
    ``flagged`` for every interval record (``m.flagged`` or a true ``flagged``
    field), so a flagged polyphase or harmonics record is findable too.
    """
    lines: list[str] = []
    dropped: list[Dropped] = []
    _encode_metrics_into(m, site, lines, dropped)
    return Encoded(tuple(lines), tuple(dropped))


def _encode_metrics_into(m: Metrics, site: str, lines: list[str],
                         dropped: list[Dropped]) -> None:
    """:func:`encode_metrics`, appending to the caller's lists (one pass over the fields).

    Finite floats and ints of nomenclature fields, nearly every value, take the first
    branch; the rest goes through the general rules. The text is that of
    :func:`encode_line` applied per measurement (tests/storage/test_line_protocol.py
    checks it).
    """
    groups: tuple[list[str], ...] = ([], [], [], [])
    route = _METRICS_ROUTE
    general = 0  # bit k: measurement k has a field the general path took (even a NaN)
    bad: list[tuple[int, Dropped]] = []
    flag_at = -1
    flag_given: FieldValue = None
    for name, value in m.fields.items():
        k = route.get(name, -1)
        if k >= 0:
            if type(value) is float:
                if value - value == 0.0:  # finite (inf - inf and nan - nan are nan)
                    groups[k].append(f"{name}={value!r}")
                    continue
            elif type(value) is int:  # counts: written as floats, see the module doc
                groups[k].append(f"{name}={float(value)!r}")
                continue
            elif type(value) is bool:
                groups[k].append(f"{name}={'true' if value else 'false'}")
                continue
            elif type(value) is str and _PLAIN_STRING.fullmatch(value):
                groups[k].append(f'{name}="{value}"')
                continue
            elif value is None:
                continue
        elif value is None:
            continue
        elif name == FLAGGED_FIELD:
            flag_given = value
            flag_at = len(groups[_ELECTRICAL])
            groups[_ELECTRICAL].append("")  # placeholder, filled in below
            continue
        else:
            k = _route_or_drop(name, m, dropped)
            if k < 0:
                continue
        general |= 1 << k
        try:
            text = format_field_value(value)
        except ValueError as exc:
            what = f"{_METRICS_MEASUREMENTS[k].value}.{name} ({_describe(m)})"
            bad.append((k, Dropped(what, str(exc))))
            continue
        groups[k].append(f"{name}={text}")
    electrical = groups[_ELECTRICAL]
    if electrical or groups[_HARMONICS] or groups[_POLYPHASE] or general & _INTERVAL_BITS:
        # an interval record: it says whether it is flagged
        flag = bool(m.flagged) or (isinstance(flag_given, bool | np.bool_) and bool(flag_given))
        if flag_at >= 0:
            electrical[flag_at] = _FLAG_TEXT[flag]
        else:
            electrical.append(_FLAG_TEXT[flag])
    tag_text, problem = _metrics_tags(site, m.channel, m.phase, m.interval)
    ts = timestamp_ms(m.time_ns)
    if not general and problem is None:  # the common case
        for k, group in enumerate(groups):
            if group:
                lines.append(f"{_METRICS_HEADS[k]}{tag_text} {','.join(group)} {ts}")
        return
    for k, group in enumerate(groups):
        if not group and not general & (1 << k):
            continue
        if problem is not None:
            dropped.append(Dropped(f"{_METRICS_MEASUREMENTS[k].value} point ({_describe(m)})",
                                   problem))
            continue
        dropped.extend(d for j, d in bad if j == k)
        if group:
            lines.append(f"{_METRICS_HEADS[k]}{tag_text} {','.join(group)} {ts}")


def _metrics_tags(site: str, channel: str, phase: str | None,
                  interval: str) -> tuple[str, str | None]:
    """The tag section of a Metrics line (as :func:`_tag_section`), quick for plain names."""
    if channel.isalnum() and interval.isalnum() and site.isalnum():
        if phase is None:
            return f",circuit={channel},interval={interval},site={site}", None
        if phase.isalnum():
            return f",circuit={channel},interval={interval},phase={phase},site={site}", None
    return _tag_section({Tag.SITE.value: site, Tag.CIRCUIT.value: channel,
                         Tag.PHASE.value: phase, Tag.INTERVAL.value: interval})


def _route_or_drop(name: str, m: Metrics, dropped: list[Dropped]) -> int:
    """Index of the measurement ``name`` goes to, or -1 after noting why it cannot."""
    measurement = _measurement_of(name)
    if measurement is None:
        dropped.append(
            Dropped(f"{name} ({_describe(m)})", "field name not in collector.nomenclature"))
        return -1
    if measurement not in _METRICS_MEASUREMENTS:
        dropped.append(
            Dropped(
                f"{name} ({_describe(m)})",
                f"field belongs to measurement {measurement.value!r}, "
                "which Metrics records do not feed",
            )
        )
        return -1
    return _METRICS_MEASUREMENTS.index(measurement)


def _known_field(name: str) -> bool:
    return _measurement_of(name) is not None


def encode_event(e: Event, site: str) -> Encoded:
    """The line of one event in the ``events`` measurement.

    Tags: site, circuit (``e.channel``), phase (the phases joined, e.g. ``ABC``),
    type, severity. Fields: ``duration_s``, ``residual_voltage_pct``,
    ``extreme_pct``, the IEEE 1159 ``category`` and the ``details`` entries whose
    keys are nomenclature names; anything else is dropped with a reason. An event
    still in progress (``duration_s`` None) is stored without a duration; when it
    is published again at its end, the point with the same series and start time
    is overwritten.
    """
    what = f"event {e.type.value} at {e.start_ns} ns"
    dropped: list[Dropped] = []
    fields: dict[str, FieldValue] = {
        "duration_s": e.duration_s,
        "residual_voltage_pct": e.residual_voltage_pct,
        "extreme_pct": e.extreme_pct,
    }
    if e.category is not None:
        if _known_field(CATEGORY_FIELD):
            fields[CATEGORY_FIELD] = e.category
        else:
            dropped.append(
                Dropped(f"{what}: {CATEGORY_FIELD}", "field name not in collector.nomenclature")
            )
    for key, value in e.details.items():
        if key in fields:
            continue
        if _known_field(key):
            fields[key] = value
        else:
            dropped.append(Dropped(f"{what}: {key}", "field name not in collector.nomenclature"))
    tags: dict[str, str | None] = {
        Tag.SITE.value: site,
        Tag.CIRCUIT.value: e.channel,
        Tag.PHASE.value: "".join(e.phases),
        Tag.TYPE.value: e.type.value,
        Tag.SEVERITY.value: e.severity.value,
    }
    line, lost = encode_line(Measurement.EVENTS.value, tags, fields, e.start_ns)
    dropped.extend(Dropped(f"{what}: {d.what}", d.reason) for d in lost)
    if line is None and not lost:
        dropped.append(Dropped(what, "no field with a value"))
    return Encoded((line,) if line is not None else (), tuple(dropped))


def encode_all(
    metrics: Sequence[Metrics], events: Sequence[Event], site: str
) -> tuple[list[str], list[str], list[Dropped]]:
    """Encode a publish call: (metric lines, event lines, everything dropped)."""
    metric_lines: list[str] = []
    event_lines: list[str] = []
    dropped: list[Dropped] = []
    for m in metrics:
        _encode_metrics_into(m, site, metric_lines, dropped)
    for e in events:
        enc = encode_event(e, site)
        event_lines.extend(enc.lines)
        dropped.extend(enc.dropped)
    return metric_lines, event_lines, dropped
