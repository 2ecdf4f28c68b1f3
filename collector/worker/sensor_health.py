"""Sensor malfunction on stored metrics: stuck, flat and physically implausible values.

Three checks, each on one (channel, phase, field):

* **stuck** — a measured RMS value repeats bit for bit for ``stuck_window_s``. Mains
  voltage and load currents always wander by more than an ADC step within minutes,
  so an identical float for ten minutes means a frozen ADC, a hung driver or a
  meter that keeps re-sending its last reading. A current of exactly 0 is exempt
  (a meter reports an idle circuit as 0.000 A).
* **flat** — the waveform itself is flat: crest factor (peak / RMS) at most
  ``flat_crest_max`` while the RMS is well above the noise floor. Any AC waveform
  has a crest factor near √2 (a sine: 1.414; even a strongly flat-topped supply
  voltage stays above 1.2); 1.0 is a DC level — a CT burden bias or a voltage
  sensor output railed at the ADC's limit.
* **implausible** — values physics rules out: negative RMS, peak below RMS, |PF| > 1,
  apparent power below active power (both break the Cauchy-Schwarz inequality on
  the same samples), a voltage above twice the nominal, a frequency outside the
  IEC 61000-4-30 measuring range (42.5-57.5 Hz at 50 Hz, 51-69 Hz at 60 Hz).

A finding becomes active after ``confirm_records`` bad records in a row (stuck:
once the window is full) and resolves after ``clear_records`` good ones, so a single
odd record neither raises nor clears an alert.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from collector.model import NS_PER_S, Metrics


class SensorFaultKind(StrEnum):
    """Fault types of the ``faults`` measurement written for sensor findings."""

    STUCK = "sensor_stuck"
    FLAT = "sensor_flat"
    IMPLAUSIBLE = "sensor_implausible"


STUCK_FIELDS = ("voltage_rms_v", "current_rms_a")
# IEC 61000-4-30 Ed.3 5.1: frequency measuring range of class A instruments.
_FREQUENCY_RANGE_HZ = {50.0: (42.5, 57.5), 60.0: (51.0, 69.0)}
_REL_TOL = 1e-3  # rounding of derived quantities (PF, S) in the DSP


@dataclass(frozen=True, slots=True)
class SensorHealthSettings:
    """Thresholds of the sensor checks.

    Attributes
    ----------
    nominal_voltage_v : float
        Declared phase-to-neutral voltage [V].
    nominal_frequency_hz : float
        50 or 60 [Hz].
    ratings_a : Mapping[str, float]
        Breaker rating per circuit id [A] (current noise floor for the flat check).
    stuck_window_s : float
        How long a value must repeat exactly to count as stuck [s].
    stuck_min_records : int
        ... and over at least this many records.
    flat_crest_max : float
        Crest factor at or below which a waveform counts as flat (DC) [1].
    flat_min_voltage_pct : float
        Flat check on voltage only above this RMS [% of nominal].
    flat_min_current_pct : float
        Flat check on current only above this RMS [% of the circuit's rating].
    confirm_records, clear_records : int
        Bad records in a row to raise, good records in a row to resolve.
    """

    nominal_voltage_v: float = 230.0
    nominal_frequency_hz: float = 50.0
    ratings_a: Mapping[str, float] = field(default_factory=dict)
    stuck_window_s: float = 600.0
    stuck_min_records: int = 20
    flat_crest_max: float = 1.05
    flat_min_voltage_pct: float = 10.0
    flat_min_current_pct: float = 2.0
    confirm_records: int = 2
    clear_records: int = 3

    def __post_init__(self) -> None:
        if not self.nominal_voltage_v > 0:
            raise ValueError(f"nominal_voltage_v: must be > 0 V, got {self.nominal_voltage_v}")
        if self.nominal_frequency_hz not in _FREQUENCY_RANGE_HZ:
            raise ValueError(
                f"nominal_frequency_hz: expected 50 or 60 Hz, got {self.nominal_frequency_hz}"
            )
        if not self.stuck_window_s > 0:
            raise ValueError(f"stuck_window_s: must be > 0 s, got {self.stuck_window_s}")
        for name in ("stuck_min_records", "confirm_records", "clear_records"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not 1.0 <= self.flat_crest_max < 1.4:
            raise ValueError(
                f"flat_crest_max: must be in [1, 1.4) (a sine has 1.414), got {self.flat_crest_max}"
            )


@dataclass(frozen=True, slots=True)
class SensorFinding:
    """A sensor finding became active (``active``) or resolved."""

    kind: SensorFaultKind
    active: bool
    channel: str
    phase: str | None
    field: str
    value: float | None
    threshold: float | None
    time_ns: int
    detail: str


@dataclass(frozen=True, slots=True)
class _Check:
    bad: bool
    value: float | None
    threshold: float | None
    detail: str


def _num(fields: Mapping[str, object], name: str) -> float | None:
    v = fields.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def implausible_checks(
    fields: Mapping[str, object], nominal_voltage_v: float, nominal_frequency_hz: float
) -> dict[str, _Check]:
    """Per field: is the value physically impossible? Only fields present are checked."""
    out: dict[str, _Check] = {}
    v_max = 2.0 * nominal_voltage_v
    f_lo, f_hi = _FREQUENCY_RANGE_HZ[nominal_frequency_hz]
    v = _num(fields, "voltage_rms_v")
    if v is not None:
        bad = not (0.0 <= v <= v_max)
        out["voltage_rms_v"] = _Check(bad, v, v_max, f"voltage {v:g} V outside 0..{v_max:g} V")
    i = _num(fields, "current_rms_a")
    if i is not None:
        out["current_rms_a"] = _Check(not i >= 0.0, i, 0.0, f"negative RMS current {i:g} A")
    f = _num(fields, "frequency_hz")
    if f is not None:
        out["frequency_hz"] = _Check(
            not (f_lo <= f <= f_hi), f, f_lo if f < f_lo else f_hi,
            f"frequency {f:g} Hz outside the measuring range {f_lo:g}..{f_hi:g} Hz",
        )
    for crest in ("voltage_crest_factor", "current_crest_factor"):
        c = _num(fields, crest)
        if c is not None:
            out[crest] = _Check(not c >= 1.0 - _REL_TOL, c, 1.0,
                                f"peak below RMS (crest factor {c:g})")
    pf = _num(fields, "power_factor")
    if pf is not None:
        out["power_factor"] = _Check(not abs(pf) <= 1.0 + _REL_TOL, pf, 1.0,
                                     f"|power factor| {abs(pf):g} > 1")
    p, s = _num(fields, "power_active_w"), _num(fields, "power_apparent_va")
    if p is not None and s is not None:
        bad = s < abs(p) * (1.0 - _REL_TOL) - 1.0  # 1 VA: display rounding of tiny loads
        out["power_apparent_va"] = _Check(bad, s, abs(p),
                                          f"apparent power {s:g} VA below |P| {abs(p):g} W")
    return out


@dataclass
class _Track:
    """Streaming state of one finding key (mutable, owned by SensorHealth)."""

    active: bool = False
    bad_run: int = 0
    good_run: int = 0
    last_value: float | None = None
    run_start_ns: int = 0
    run_records: int = 0


class SensorHealth:
    """Runs the three checks over a stream of Metrics records; returns state changes."""

    def __init__(self, settings: SensorHealthSettings) -> None:
        self._s = settings
        self._tracks: dict[tuple[SensorFaultKind, str, str | None, str], _Track] = {}

    def update(self, metrics: Iterable[Metrics]) -> list[SensorFinding]:
        out: list[SensorFinding] = []
        for m in sorted(metrics, key=lambda r: r.time_ns):
            out += self._implausible(m)
            out += self._flat(m)
            out += self._stuck(m)
        return out

    def active(self) -> list[tuple[SensorFaultKind, str, str | None, str]]:
        return [k for k, t in self._tracks.items() if t.active]

    def _track(self, kind: SensorFaultKind, m: Metrics, name: str) -> _Track:
        return self._tracks.setdefault((kind, m.channel, m.phase, name), _Track())

    def _judge(self, kind: SensorFaultKind, m: Metrics, name: str, check: _Check,
               confirm: int) -> SensorFinding | None:
        t = self._track(kind, m, name)
        if check.bad:
            t.bad_run += 1
            t.good_run = 0
            if not t.active and t.bad_run >= confirm:
                t.active = True
                return SensorFinding(kind, True, m.channel, m.phase, name, check.value,
                                     check.threshold, m.time_ns, check.detail)
        else:
            t.good_run += 1
            t.bad_run = 0
            if t.active and t.good_run >= self._s.clear_records:
                t.active = False
                return SensorFinding(kind, False, m.channel, m.phase, name, check.value,
                                     check.threshold, m.time_ns, f"{name} back to normal")
        return None

    def _implausible(self, m: Metrics) -> list[SensorFinding]:
        checks = implausible_checks(m.fields, self._s.nominal_voltage_v,
                                    self._s.nominal_frequency_hz)
        found = (self._judge(SensorFaultKind.IMPLAUSIBLE, m, name, c, self._s.confirm_records)
                 for name, c in checks.items())
        return [f for f in found if f is not None]

    def _flat(self, m: Metrics) -> list[SensorFinding]:
        out: list[SensorFinding] = []
        rating = self._s.ratings_a.get(m.channel)
        floors = {
            "voltage": self._s.nominal_voltage_v * self._s.flat_min_voltage_pct / 100.0,
            "current": (rating * self._s.flat_min_current_pct / 100.0
                        if rating is not None else math.inf),
        }
        for quantity, unit in (("voltage", "v"), ("current", "a")):
            rms = _num(m.fields, f"{quantity}_rms_{unit}")
            crest = _num(m.fields, f"{quantity}_crest_factor")
            if rms is None or crest is None or rms < floors[quantity]:
                continue
            check = _Check(
                crest <= self._s.flat_crest_max, crest, self._s.flat_crest_max,
                f"{quantity} waveform is flat (crest factor {crest:.3f}, a sine has 1.414): "
                "DC level, railed sensor or ADC",
            )
            found = self._judge(SensorFaultKind.FLAT, m, f"{quantity}_crest_factor", check,
                                self._s.confirm_records)
            if found is not None:
                out.append(found)
        return out

    def _stuck(self, m: Metrics) -> list[SensorFinding]:
        out: list[SensorFinding] = []
        window_ns = round(self._s.stuck_window_s * NS_PER_S)
        for name in STUCK_FIELDS:
            value = _num(m.fields, name)
            if value is None:
                continue
            t = self._track(SensorFaultKind.STUCK, m, name)
            if t.last_value is not None and value == t.last_value:
                t.run_records += 1
            else:
                t.last_value, t.run_start_ns, t.run_records = value, m.time_ns, 1
            exempt = name == "current_rms_a" and value == 0.0
            stuck = (not exempt and t.run_records >= self._s.stuck_min_records
                     and m.time_ns - t.run_start_ns >= window_ns)
            if stuck and not t.active:
                t.active = True
                t.good_run = 0
                secs = (m.time_ns - t.run_start_ns) / NS_PER_S
                out.append(SensorFinding(
                    SensorFaultKind.STUCK, True, m.channel, m.phase, name, value,
                    self._s.stuck_window_s, m.time_ns,
                    f"{name} has repeated {value!r} exactly for {secs:.0f} s "
                    f"({t.run_records} records)",
                ))
            elif t.active and t.run_records == 1:
                # the value moved: one change is conclusive for a frozen reading
                t.active = False
                out.append(SensorFinding(
                    SensorFaultKind.STUCK, False, m.channel, m.phase, name, value,
                    self._s.stuck_window_s, m.time_ns, f"{name} changes again",
                ))
        return out
