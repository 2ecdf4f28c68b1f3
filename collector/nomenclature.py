"""The one table of measurement, tag and field names, with units.

The InfluxDB writer, the Flux templates, Grafana dashboards, MQTT discovery and
the docs all take their names from here. Units are part of field names.
``python -m collector.nomenclature`` prints the table as Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Measurement(StrEnum):
    """InfluxDB measurements."""

    ELECTRICAL = "electrical"  # per circuit / voltage channel, per interval
    HARMONICS = "harmonics"  # harmonic groups per channel
    POLYPHASE = "polyphase"  # system-wide: unbalance, residual current
    EVENTS = "events"  # waveform-level events detected in the collector
    FAULTS = "faults"  # rule results (Flux tasks, worker)
    HEALTH = "health"  # collector self-monitoring (spool depth, write stats)
    AUDIT = "audit"  # every action and notification of the rule worker


class Tag(StrEnum):
    """Tags; keep cardinality low."""

    SITE = "site"
    CIRCUIT = "circuit"  # circuit id, voltage channel id, or "system"
    PHASE = "phase"
    INTERVAL = "interval"  # basic, 150c/180c, 10min, 2h
    TYPE = "type"  # event / fault type
    SEVERITY = "severity"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: name (with unit), measurement, unit symbol, meaning, HA classes."""

    name: str
    measurement: Measurement
    unit: str
    description: str
    device_class: str | None = None  # Home Assistant sensor device_class
    state_class: str | None = None  # Home Assistant state_class


_E = Measurement.ELECTRICAL
_P = Measurement.POLYPHASE
_EV = Measurement.EVENTS
_H = Measurement.HEALTH
_F = Measurement.FAULTS
_A = Measurement.AUDIT

FIELDS: tuple[FieldSpec, ...] = (
    # voltage channel quantities
    FieldSpec("voltage_rms_v", _E, "V", "RMS voltage over the interval", "voltage", "measurement"),
    FieldSpec("voltage_peak_v", _E, "V", "Largest absolute instantaneous voltage", "voltage", "measurement"),
    FieldSpec("voltage_crest_factor", _E, "", "Peak / RMS voltage", None, "measurement"),
    FieldSpec("voltage_fundamental_v", _E, "V", "RMS of the fundamental (harmonic group 1)", "voltage", "measurement"),
    FieldSpec("voltage_thd_pct", _E, "%", "Total harmonic distortion of voltage (groups 2..50, IEC 61000-4-7)", None, "measurement"),
    FieldSpec("frequency_hz", _E, "Hz", "Fundamental frequency measured over the interval", "frequency", "measurement"),
    # current channel / circuit quantities
    FieldSpec("current_rms_a", _E, "A", "RMS current over the interval", "current", "measurement"),
    FieldSpec("current_peak_a", _E, "A", "Largest absolute instantaneous current", "current", "measurement"),
    FieldSpec("current_crest_factor", _E, "", "Peak / RMS current", None, "measurement"),
    FieldSpec("current_fundamental_a", _E, "A", "RMS of the fundamental current (group 1)", "current", "measurement"),
    FieldSpec("current_thd_pct", _E, "%", "Total harmonic distortion of current (groups 2..50)", None, "measurement"),
    FieldSpec("power_active_w", _E, "W", "Active power P, mean of v*i (+ import, - export)", "power", "measurement"),
    FieldSpec("power_apparent_va", _E, "VA", "Apparent power S = Vrms * Irms (IEEE 1459)", "apparent_power", "measurement"),
    FieldSpec("power_reactive_var", _E, "var", "Fundamental reactive power Q1 (IEEE 1459)", "reactive_power", "measurement"),
    FieldSpec("power_nonactive_var", _E, "var", "Non-active power N = sqrt(S^2 - P^2) (IEEE 1459)", "reactive_power", "measurement"),
    FieldSpec("power_factor", _E, "", "P / S (signed like P)", "power_factor", "measurement"),
    FieldSpec("power_factor_displacement", _E, "", "P1 / S1, cosine of the fundamental angle", "power_factor", "measurement"),
    FieldSpec("energy_import_wh", _E, "Wh", "Energy imported (P > 0), cumulative", "energy", "total_increasing"),
    FieldSpec("energy_export_wh", _E, "Wh", "Energy exported (P < 0), cumulative", "energy", "total_increasing"),
    # quality fields
    FieldSpec("samples_per_cycle", _E, "", "Achieved samples per fundamental cycle", None, None),
    FieldSpec("missing_samples", _E, "", "Samples missing (NaN) in the interval", None, None),
    FieldSpec("clipped_samples", _E, "", "Samples at or beyond full scale in the interval", None, None),
    FieldSpec("harmonics_max_order", _E, "", "Highest harmonic order the sampling supports", None, None),
    FieldSpec("calibration_id", _E, "", "Calibration applied to the channel(s)", None, None),
    FieldSpec("flagged", _E, "", "Interval overlapped a dip, swell or interruption", None, None),
    FieldSpec("frequency_locked", _E, "", "Interval synchronised to measured zero crossings (false: nominal-length fallback)", None, None),
    FieldSpec("interval_complete", _E, "", "Aggregate holds every basic interval it should (false: partial, e.g. at start/stop)", None, None),
    FieldSpec("basic_intervals", _E, "", "Number of basic intervals in an aggregate", None, None),
    FieldSpec("sampling", _E, "", "How the source sampled: waveform, incoherent (slow ADC) or meter (string)", None, None),
    FieldSpec("sampling_locked", _E, "", "Slow-ADC sampling stayed incoherent with the mains over the window", None, None),
    FieldSpec("accuracy_rms_pct", _E, "%", "Expected RMS accuracy the source's capability model promises", None, None),
    FieldSpec("accuracy_power_pct_of_s", _E, "%", "Expected active-power accuracy in % of apparent power", None, None),
    FieldSpec("meter_alarm", _E, "", "The external meter's own power alarm is set (PZEM-004T)", None, None),
    FieldSpec("skew_correction_us", _E, "us", "Timing correction applied to the current relative to its voltage (multiplexed ADC)", None, None),
    # polyphase
    FieldSpec("voltage_unbalance_neg_pct", _P, "%", "Negative-sequence voltage unbalance u2 = U2/U1", None, "measurement"),
    FieldSpec("voltage_unbalance_zero_pct", _P, "%", "Zero-sequence voltage unbalance u0 = U0/U1", None, "measurement"),
    FieldSpec("current_unbalance_neg_pct", _P, "%", "Negative-sequence current unbalance I2/I1", None, "measurement"),
    FieldSpec("residual_current_a", _P, "A", "RMS of the residual current (measured or sum of phases + neutral)", "current", "measurement"),
    FieldSpec("neutral_voltage_divergence_pct", _P, "%", "Spread of phase voltages (open-neutral indicator)", None, "measurement"),
    # events
    FieldSpec("duration_s", _EV, "s", "Event duration", "duration", None),
    FieldSpec("residual_voltage_pct", _EV, "%", "Lowest Urms(1/2) in % of reference (dips, interruptions)", None, None),
    FieldSpec("extreme_pct", _EV, "%", "Extreme value in % of reference (swells, excursions)", None, None),
    FieldSpec("category", _EV, "", "IEEE 1159 category of the event (string)", None, None),
    # faults (Flux rules and the worker)
    FieldSpec("value", _F, "", "Measured value that crossed the threshold (unit in `unit`)", None, None),
    FieldSpec("threshold", _F, "", "Threshold that was crossed (unit in `unit`)", None, None),
    FieldSpec("state", _F, "", "Fault state: active or resolved (string)", None, None),
    FieldSpec("unit", _F, "", "Unit of value and threshold (string)", None, None),
    # audit log of the worker (value/threshold shared with faults)
    FieldSpec("outcome", _A, "", "Result of the action: ok, failed, skipped (string)", None, None),
    FieldSpec("detail", _A, "", "Human-readable detail of the action (string)", None, None),
    FieldSpec("channel", _A, "", "Notification channel or output used (string)", None, None),
    FieldSpec("target", _A, "", "Relay, recipient or URL acted on (string)", None, None),
    FieldSpec("alert_id", _A, "", "Alert the action belongs to (string)", None, None),
    # health
    FieldSpec("spool_depth_points", _H, "", "Points waiting in the on-disk spool", None, "measurement"),
    FieldSpec("points_written", _H, "", "Points written to InfluxDB since start", None, "total_increasing"),
    FieldSpec("points_dropped", _H, "", "Points rejected by InfluxDB and dropped (logged)", None, "total_increasing"),
    FieldSpec("write_errors", _H, "", "Failed write attempts since start", None, "total_increasing"),
    FieldSpec("fields_dropped", _H, "", "Single field values dropped (NaN/inf, unknown name), logged", None, "total_increasing"),
    FieldSpec("points_spooled", _H, "", "Points written to the on-disk spool since start", None, "total_increasing"),
    FieldSpec("points_replayed", _H, "", "Spooled points delivered to InfluxDB since start", None, "total_increasing"),
    FieldSpec("points_evicted", _H, "", "Oldest spooled points dropped because the spool was full", None, "total_increasing"),
    FieldSpec("points_lost", _H, "", "Points that could be neither written nor spooled", None, "total_increasing"),
)

HARMONIC_MAX_ORDER = 50


def harmonic_field(quantity: str, order: int) -> str:
    """Field name of harmonic group ``order`` for ``quantity`` ("voltage" or "current")."""
    if not 1 <= order <= HARMONIC_MAX_ORDER:
        raise ValueError(f"order: must be in 1..{HARMONIC_MAX_ORDER}, got {order}")
    return f"{quantity}_h{order}_{'v' if quantity == 'voltage' else 'a'}"


_BY_NAME = {f.name: f for f in FIELDS}


def field_spec(name: str) -> FieldSpec:
    """Look up a field by name; harmonic fields are synthesised."""
    try:
        return _BY_NAME[name]
    except KeyError:
        pass
    for quantity, unit in (("voltage", "V"), ("current", "A")):
        for order in range(1, HARMONIC_MAX_ORDER + 1):
            if name == harmonic_field(quantity, order):
                return FieldSpec(
                    name, Measurement.HARMONICS, unit,
                    f"RMS of {quantity} harmonic group {order} (IEC 61000-4-7)",
                )
    raise KeyError(f"unknown field {name!r}; see collector.nomenclature.FIELDS")


def markdown_table() -> str:
    """The table as Markdown, for the docs."""
    rows = ["| field | measurement | unit | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | `{f.measurement}` | {f.unit} | {f.description} |" for f in FIELDS]
    rows.append(
        "| `voltage_h{n}_v`, `current_h{n}_a` | `harmonics` | V, A | "
        "RMS of harmonic group n = 1..50 (IEC 61000-4-7) |"
    )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
