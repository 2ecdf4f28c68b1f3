"""How each field is summarised over a window: the rule table of the rollup tasks.

One aggregate per field, and the field keeps its name in every bucket, so a Grafana
panel or an export reads ``voltage_rms_v`` from raw, rollup_1m or rollup_1h alike.
The rules are composable, so the 1-hour rollup computed from the 1-minute one gives
what it would give from raw, with one caveat for the mean: it is the mean of the
minute means, i.e. every minute weighs the same. Records are synchronised intervals
of equal duration, so this is the time-weighted mean of the hour; it differs from a
plain mean of the raw records only where minutes hold different numbers of records
(a minute with a gap).
"""

from __future__ import annotations

from enum import StrEnum

from collector.nomenclature import FieldSpec, Measurement


class Rollup(StrEnum):
    """Aggregate functions of the rollup table."""

    MEAN = "mean"  # instantaneous quantities: RMS, power, PF, THD, frequency, harmonics
    MAX = "max"  # peaks and crest factors; the spool depth
    MIN = "min"  # quality floors: achieved samples per cycle, supported harmonic order
    SUM = "sum"  # sample counts (missing, clipped)
    LAST = "last"  # cumulative counters (energy, writer statistics) and labels
    ANY = "any"  # the boolean interval flag: true if any record was flagged
    ALL = "all"  # a boolean quality: true only if every record had it

    def flux_aggregate(self, every: str) -> str:
        """Flux pipeline steps aggregating a table stream over windows of ``every``.

        Windows are stamped with their *start*, like every GridGuard record.
        """
        window = f"aggregateWindow(every: {every}, fn: {{fn}}, timeSrc: \"_start\", " \
                 "createEmpty: false)"
        if self in (Rollup.ANY, Rollup.ALL):
            # max()/min() are not defined on booleans: count them as 0/1.
            fn = "max" if self is Rollup.ANY else "min"
            return ("    |> toInt()\n    |> " + window.format(fn=fn)
                    + "\n    |> toBool()")
        return "    |> " + window.format(fn=self.value)


# Records of things that happened, not sampled quantities: they stay in the events
# bucket as they are.
NOT_ROLLED_UP = frozenset({Measurement.EVENTS, Measurement.FAULTS, Measurement.AUDIT})

_PEAKS = ("voltage_peak_v", "current_peak_a", "voltage_crest_factor", "current_crest_factor",
          "accuracy_rms_pct", "accuracy_power_pct_of_s")  # worst accuracy promised
_COUNTS = ("missing_samples", "clipped_samples", "basic_intervals")
_FLOORS = ("samples_per_cycle", "harmonics_max_order")


def rollup_of(spec: FieldSpec) -> Rollup | None:
    """The aggregate for one field; None for event, fault and audit fields."""
    if spec.measurement in NOT_ROLLED_UP:
        return None
    name = spec.name
    if spec.state_class == "total_increasing" or name in ("calibration_id", "sampling"):
        return Rollup.LAST
    if name in _PEAKS or name == "spool_depth_points":
        return Rollup.MAX
    if name in _COUNTS:
        return Rollup.SUM
    if name in _FLOORS:
        return Rollup.MIN
    if name in ("flagged", "meter_alarm"):
        return Rollup.ANY
    if name in ("frequency_locked", "interval_complete", "sampling_locked"):
        return Rollup.ALL
    return Rollup.MEAN
