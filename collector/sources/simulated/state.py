"""Steady state of the panel between two switching instants, solved in harmonic phasors.

Between breakpoints (a load switching, a disturbance starting or ending) every
waveform is periodic: this module computes the phasors of every channel for one
such state. The source turns them into lookup tables; the truth is read from them.

Order of the solution (first order in the supply impedance, iterated to a fixed
point): open-circuit supply E per phase (scaled by dips/swells, plus polluting
harmonics, plus the open-neutral star-point shift) -> load currents from the panel
voltage V -> line and neutral currents -> V = E − Z_line·I_line − Z_neutral·I_neutral.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from collector.config.system import SystemType
from collector.model import Phase, Quantity
from collector.sources.simulated.disturbances import (
    Disturbance,
    GroundFault,
    HarmonicPollution,
    OpenNeutral,
    Overload,
    VoltageChange,
)
from collector.sources.simulated.loads import (
    LoadModel,
    VoltageResponse,
    Waveform,
    current_shape,
    inrush_extra_ratio,
    load_model,
    response_factors,
    scale_to_power,
)
from collector.sources.simulated.mains import (
    impedance_by_order,
    phase_lag_cycles,
    rotate_to_phase,
    supply_phasors,
)
from collector.sources.simulated.panel import (
    RESIDUAL_CHANNEL_ID,
    CircuitSpec,
    PanelSpec,
    voltage_channel_id,
)
from collector.sources.simulated.spectra import ComplexArray

# The impedance loop is a fixed-point iteration: the drop is a few % of the voltage,
# so each pass shrinks the error by about that factor.
_MAX_ITERATIONS = 12
_CONVERGED_V = 1e-7


class Connection(StrEnum):
    LINE_NEUTRAL = "line_neutral"  # one phase to neutral
    LINE_LINE = "line_line"  # split phase: between the two legs (240 V)
    STAR = "star"  # balanced three-phase load with neutral


@dataclass(frozen=True, slots=True)
class Row:
    """One channel: what it measures and its converter range (peak, physical)."""

    channel_id: str
    quantity: Quantity
    phase: Phase
    circuit: str | None
    full_scale: float


@dataclass(frozen=True, slots=True)
class CompiledCircuit:
    """A circuit prepared for solving.

    ``shape`` holds per-row current phasors at rated power and nominal supply (for
    loads with a fixed waveform); ``conductance_s`` is 1/R per connection for
    resistive loads.
    """

    spec: CircuitSpec
    model: LoadModel
    connection: Connection
    rows: tuple[int, ...]
    phase_index: tuple[int, ...]  # supply phase index of each row
    shape: ComplexArray  # (n_rows_of_circuit, H + 1)
    conductance_s: float
    ref_nominal_v: float  # |fundamental| of the reference voltage at nominal supply
    inrush_ratio: complex


@dataclass(frozen=True, slots=True)
class CompiledPanel:
    """Everything about the panel that does not change during a run."""

    spec: PanelSpec
    h_max: int
    phases: tuple[Phase, ...]
    lags: tuple[float, ...]
    supply: ComplexArray  # (n_phases, H + 1) open-circuit supply phasors
    z_line: ComplexArray  # (H + 1,)
    z_neutral: ComplexArray
    rows: tuple[Row, ...]
    circuits: tuple[CompiledCircuit, ...]
    residual_row: int | None
    # current rows n_ph .. n_ph + n_cur - 1, vectorised for the solver:
    row_circuit: NDArray[np.intp]  # circuit of each current row
    ref_weights: NDArray[np.float64]  # (n_cur, n_ph): reference voltage = weights @ V
    ref_nominal_v: NDArray[np.float64]  # (n_cur,) |reference fundamental| at nominal
    shapes: ComplexArray  # (n_cur, H + 1) rated currents of fixed-waveform loads, else 0
    conductance: NDArray[np.float64]  # (n_cur, n_ph): resistive currents = conductance @ V
    constant_power: NDArray[np.bool_]  # (n_cur,) rows of constant-power loads
    incidence: NDArray[np.float64]  # (n_ph, n_cur): which phase conductor each row is on

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def circuit_index(self, circuit_id: str) -> int:
        for k, c in enumerate(self.circuits):
            if c.spec.id == circuit_id:
                return k
        raise KeyError(f"no circuit {circuit_id!r}; have {[c.spec.id for c in self.circuits]}")

    def row_index(self, channel_id: str) -> int:
        for k, r in enumerate(self.rows):
            if r.channel_id == channel_id:
                return k
        raise KeyError(f"no channel {channel_id!r}; have {[r.channel_id for r in self.rows]}")


def harmonic_limit(sample_rate_hz: float, nominal_frequency_hz: float) -> int:
    """Highest order synthesised: at most 50 (IEC 61000-4-7) and safely below Nyquist
    even when the frequency drifts up (orders are kept under 0.45·fs)."""
    return max(1, min(50, math.floor(0.45 * sample_rate_hz / nominal_frequency_hz)))


def compile_panel(spec: PanelSpec) -> CompiledPanel:
    """Prepare a panel: rows in channel order, supply phasors, load shapes scaled to rating."""
    mains = spec.mains
    h_max = harmonic_limit(spec.sample_rate_hz, mains.nominal_frequency_hz)
    phases = spec.phases
    lag_map = phase_lag_cycles(mains.system)
    lags = tuple(lag_map[p] for p in phases)
    base = supply_phasors(mains, h_max)
    supply = np.stack([rotate_to_phase(base, lag) for lag in lags])
    z_line, z_neutral = impedance_by_order(mains.impedance, h_max)
    pidx = {p: k for k, p in enumerate(phases)}

    rows = [
        Row(voltage_channel_id(p), Quantity.VOLTAGE, p, None, spec.full_scale_v) for p in phases
    ]
    circuits: list[CompiledCircuit] = []
    for c in spec.circuits:
        model = load_model(c.load)
        cphases = tuple(sorted(c.phases))
        first = len(rows)
        rows += [Row(c.channel_id(p), Quantity.CURRENT, p, c.id, c.full_scale_a) for p in cphases]
        if len(cphases) == 1:
            connection = Connection.LINE_NEUTRAL
        elif mains.system is SystemType.SPLIT_PHASE:
            connection = Connection.LINE_LINE
        else:
            connection = Connection.STAR
        phase_index = tuple(pidx[p] for p in cphases)
        refs = _references(supply, connection, phase_index)
        n_conn = len(refs)
        p_conn = c.load.power_w / n_conn
        ref_nominal_v = float(abs(refs[0][1]))
        if model.waveform is Waveform.FOLLOWS_VOLTAGE:
            shape = np.zeros((len(cphases), h_max + 1), dtype=np.complex128)
            # a nameplate rating: R = U_rated² / P_rated at the nominal (sinusoidal)
            # voltage; on a distorted supply the heater draws (Urms/Unom)² of it
            conductance = p_conn / ref_nominal_v**2
        else:
            unit = current_shape(model, h_max)
            per_ref = []
            for ref in refs:
                # lock the shape to the reference voltage's fundamental angle
                shifted = unit * np.exp(1j * np.arange(h_max + 1) * np.angle(ref[1]))
                per_ref.append(shifted * scale_to_power(shifted, ref, p_conn))
            shape = _rows_from_refs(np.stack(per_ref), connection)
            conductance = 0.0
        circuits.append(
            CompiledCircuit(
                spec=c,
                model=model,
                connection=connection,
                rows=tuple(range(first, len(rows))),
                phase_index=phase_index,
                shape=shape,
                conductance_s=conductance,
                ref_nominal_v=ref_nominal_v,
                inrush_ratio=inrush_extra_ratio(model),
            )
        )
    residual_row = None
    if spec.residual_channel:
        residual_row = len(rows)
        rows.append(
            Row(
                RESIDUAL_CHANNEL_ID,
                Quantity.RESIDUAL_CURRENT,
                Phase.G,
                None,
                spec.residual_full_scale_a,
            )
        )
    n_ph = len(phases)
    n_cur = sum(len(c.rows) for c in circuits)
    row_circuit = np.zeros(n_cur, dtype=np.intp)
    weights = np.zeros((n_cur, n_ph))
    ref_nominal = np.ones(n_cur)
    shapes = np.zeros((n_cur, h_max + 1), dtype=np.complex128)
    conductance_m = np.zeros((n_cur, n_ph))
    constant_power = np.zeros(n_cur, dtype=np.bool_)
    incidence = np.zeros((n_ph, n_cur))
    for ci, cc in enumerate(circuits):
        for j, (r, k) in enumerate(zip(cc.rows, cc.phase_index, strict=True)):
            q = r - n_ph
            row_circuit[q] = ci
            incidence[k, q] = 1.0
            ref_nominal[q] = cc.ref_nominal_v
            constant_power[q] = cc.model.response is VoltageResponse.CONSTANT_POWER
            shapes[q] = cc.shape[j]
            if cc.connection is Connection.LINE_LINE:
                a, b = cc.phase_index
                weights[q, a], weights[q, b] = 1.0, -1.0
                sign = 1.0 if j == 0 else -1.0  # the second leg carries the return current
                conductance_m[q, a] = sign * cc.conductance_s
                conductance_m[q, b] = -sign * cc.conductance_s
            else:
                weights[q, k] = 1.0
                conductance_m[q, k] = cc.conductance_s
    return CompiledPanel(
        spec,
        h_max,
        phases,
        lags,
        supply,
        z_line,
        z_neutral,
        tuple(rows),
        tuple(circuits),
        residual_row,
        row_circuit,
        weights,
        ref_nominal,
        shapes,
        conductance_m,
        constant_power,
        incidence,
    )


def _references(
    voltages: ComplexArray, connection: Connection, phase_index: tuple[int, ...]
) -> list[ComplexArray]:
    """Voltage each connection of a circuit is driven by (one per connection)."""
    if connection is Connection.LINE_LINE:
        return [voltages[phase_index[0]] - voltages[phase_index[1]]]
    return [voltages[k] for k in phase_index]


def _rows_from_refs(per_ref: ComplexArray, connection: Connection) -> ComplexArray:
    """Row currents from connection currents: a line-to-line load returns on the other leg."""
    if connection is Connection.LINE_LINE:
        return np.stack([per_ref[0], -per_ref[0]])
    return per_ref


@dataclass(frozen=True, slots=True)
class Solution:
    """Phasors of every channel in one steady state.

    ``rows`` has shape (n_rows, H + 1): physical phasors [V or A] of every channel in
    row order (voltage rows hold the panel voltage, after the impedance drop).
    """

    rows: ComplexArray


def solve(panel: CompiledPanel, on: Sequence[bool], active: Sequence[Disturbance]) -> Solution:
    """Phasors of every channel with circuits switched per ``on`` and ``active`` disturbances."""
    spec = panel.spec
    n_ph = len(panel.phases)
    h1 = panel.h_max + 1
    vnom = spec.mains.nominal_voltage_v
    pidx = {p: k for k, p in enumerate(panel.phases)}

    g = np.ones(n_ph)
    source = panel.supply.copy()
    shift_pu = 0.0
    overload = np.ones(len(panel.circuits))
    leaks: list[tuple[int, int, float]] = []  # (current row, phase, amps at nominal voltage)
    for d in active:
        if isinstance(d, VoltageChange):
            for p in d.phases or panel.phases:
                g[pidx[p]] *= d.magnitude_pct / 100.0
        elif isinstance(d, HarmonicPollution) and d.order <= panel.h_max:
            for p in d.phases or panel.phases:
                k = pidx[p]
                source[k, d.order] += (
                    vnom
                    * d.pct
                    / 100.0
                    * np.exp(
                        1j * (math.radians(d.angle_deg) - 2.0 * math.pi * d.order * panel.lags[k])
                    )
                )
        elif isinstance(d, OpenNeutral):
            shift_pu += d.shift_pct / 100.0
        elif isinstance(d, Overload):
            overload[panel.circuit_index(d.circuit)] *= d.factor
        elif isinstance(d, GroundFault):
            c = panel.circuits[panel.circuit_index(d.circuit)]
            leaks.append((c.rows[0] - n_ph, c.phase_index[0], d.leakage_a))
    source *= g[:, None]
    on_factor = np.array([1.0 if o else 0.0 for o in on]) * overload
    row_factor = on_factor[panel.row_circuit]
    conductance = panel.conductance * row_factor[:, None]

    stiff = not (np.any(panel.z_line) or np.any(panel.z_neutral))
    drop = np.zeros((n_ph, h1), dtype=np.complex128)
    shifted = source
    currents = np.zeros((len(panel.row_circuit), h1), dtype=np.complex128)
    leak_total = np.zeros(h1, dtype=np.complex128)
    volts = source
    for it in range(_MAX_ITERATIONS):
        volts = shifted - drop
        u = np.abs(panel.ref_weights @ volts[:, 1]) / panel.ref_nominal_v
        scale = row_factor * response_factors(panel.constant_power, u)
        currents = panel.shapes * scale[:, None] + conductance @ volts
        leak_total = np.zeros(h1, dtype=np.complex128)
        for q, k, amps in leaks:
            # a resistive fault to earth: current in phase with, and proportional to, the voltage
            leak = amps * volts[k, 1] / vnom
            currents[q, 1] += leak
            leak_total[1] += leak
        line = panel.incidence @ currents
        neutral = line.sum(axis=0) - leak_total
        if it == 0 and shift_pu > 0.0:
            # the star point drifts towards the phase that pulls hardest on it
            heavy = int(np.argmax(np.abs(line[:, 1])))
            shifted = source.copy()
            angle = np.angle(source[heavy, 1]) if abs(source[heavy, 1]) > 0 else 0.0
            shifted[:, 1] -= shift_pu * vnom * np.exp(1j * angle)
            continue
        if stiff:
            break
        new_drop = panel.z_line[None, :] * line + panel.z_neutral[None, :] * neutral[None, :]
        change = float(np.max(np.abs(new_drop - drop)))
        drop = new_drop
        if change < _CONVERGED_V:
            volts = shifted - drop
            break
    rows = np.zeros((panel.n_rows, h1), dtype=np.complex128)
    rows[:n_ph] = volts
    rows[n_ph : n_ph + currents.shape[0]] = currents
    if panel.residual_row is not None:
        rows[panel.residual_row] = _standing_leakage(panel, volts) + leak_total
    return Solution(rows)


def _standing_leakage(panel: CompiledPanel, volts: ComplexArray) -> ComplexArray:
    """Capacitive earth leakage of EMC filters on phase A: I_h = j·h·(I0/Vnom)·V_h."""
    spec = panel.spec
    orders = np.arange(panel.h_max + 1)
    per_volt = spec.standing_leakage_a / spec.mains.nominal_voltage_v
    out: ComplexArray = 1j * orders * per_volt * volts[0]
    return out


def inrush_phasors(
    panel: CompiledPanel, solution: Solution, circuit_index: int
) -> tuple[ComplexArray, ComplexArray]:
    """Extra fundamental phasors at switch-on of a motor circuit (decay not applied).

    Returns (current rows [A], one per row of the circuit; voltage change per supply
    phase [V]) — the start current also pulls the panel voltage down through the
    supply impedance (the light flicker when a motor starts).
    """
    c = panel.circuits[circuit_index]
    n_ph = len(panel.phases)
    extra = np.array([solution.rows[r, 1] * c.inrush_ratio for r in c.rows], dtype=np.complex128)
    dv = np.zeros(n_ph, dtype=np.complex128)
    for e, k in zip(extra, c.phase_index, strict=True):
        dv[k] -= panel.z_line[1] * e
    dv -= panel.z_neutral[1] * extra.sum()
    return extra, dv
