"""What the simulated panel is doing at an instant, computed from the model, not measured.

Values follow IEEE 1459 from the harmonic phasors of the state in force (plus a
decaying motor inrush when one is under way): RMS = sqrt(Σ|X_h|²),
P = Σ_h Re(V_h·conj(I_h)), Q1 = Im(V_1·conj(I_1)), S = Σ_phases Vrms·Irms
(arithmetic apparent power), PF = P/S, displacement PF = P1/S1. Converter noise,
quantisation, arc bursts and sensor faults are not in the truth: it describes the
physics, which is what a measurement should recover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from collector.model import Phase
from collector.sources.simulated.spectra import ComplexArray, active_power, rms, thd_pct
from collector.sources.simulated.state import CompiledPanel


@dataclass(frozen=True, slots=True)
class CircuitTruth:
    """One circuit at one instant.

    Attributes
    ----------
    circuit : str
    phases : tuple[Phase, ...]
    on : bool
        Switched on by its schedule.
    current_rms_a : tuple[float, ...]
        RMS current per phase [A], in the order of ``phases``.
    current_fundamental_a : tuple[float, ...]
        RMS of the fundamental current per phase [A].
    power_active_w : float
        Total active power [W] (negative when exporting).
    power_reactive_var : float
        Total fundamental reactive power Q1 [var] (positive = inductive).
    power_apparent_va : float
        Σ over phases of Vrms·Irms [VA].
    power_factor : float
        P / S (signed like P); 0 when S is 0.
    power_factor_displacement : float
        P1 / S1 (signed like P1); 0 when S1 is 0.
    """

    circuit: str
    phases: tuple[Phase, ...]
    on: bool
    current_rms_a: tuple[float, ...]
    current_fundamental_a: tuple[float, ...]
    power_active_w: float
    power_reactive_var: float
    power_apparent_va: float
    power_factor: float
    power_factor_displacement: float


@dataclass(frozen=True, slots=True)
class PanelTruth:
    """The whole panel at one instant.

    Attributes
    ----------
    t_s : float
        Time since the start of the run [s].
    frequency_hz : float
        Instantaneous fundamental frequency [Hz].
    voltage_rms_v, voltage_fundamental_v, voltage_thd_pct : Mapping[Phase, float]
        Per line: RMS [V], fundamental RMS [V], THD over orders 2..H [%].
    circuits : Mapping[str, CircuitTruth]
    residual_current_a : float | None
        RMS residual (earth leakage) current [A]; None without a residual CT.
    channel_rms : Mapping[str, float]
        RMS of every channel's physical signal [V or A].
    active_events : tuple[str, ...]
        Disturbances in force, as ``"<type>#<index in the scenario>"``.
    """

    t_s: float
    frequency_hz: float
    voltage_rms_v: Mapping[Phase, float]
    voltage_fundamental_v: Mapping[Phase, float]
    voltage_thd_pct: Mapping[Phase, float]
    circuits: Mapping[str, CircuitTruth]
    residual_current_a: float | None
    channel_rms: Mapping[str, float]
    active_events: tuple[str, ...]


def panel_truth(
    panel: CompiledPanel,
    rows: ComplexArray,
    *,
    t_s: float,
    frequency_hz: float,
    on: tuple[bool, ...],
    active_events: tuple[str, ...],
) -> PanelTruth:
    """Truth from the phasors ``rows`` (n_rows, H + 1) of every channel [V or A]."""
    vr = {p: rms(rows[k]) for k, p in enumerate(panel.phases)}
    v1 = {p: float(abs(rows[k, 1])) for k, p in enumerate(panel.phases)}
    vthd = {p: thd_pct(rows[k]) for k, p in enumerate(panel.phases)}
    circuits: dict[str, CircuitTruth] = {}
    for ci, c in enumerate(panel.circuits):
        p_w = q_var = s_va = p1 = s1 = 0.0
        irms: list[float] = []
        i1: list[float] = []
        for r, k in zip(c.rows, c.phase_index, strict=True):
            v = rows[k]
            i = rows[r]
            p_w += active_power(v, i)
            q_var += float((v[1] * np.conj(i[1])).imag)
            p1 += float((v[1] * np.conj(i[1])).real)
            s1 += float(abs(v[1]) * abs(i[1]))
            irms.append(rms(i))
            i1.append(float(abs(i[1])))
            s_va += rms(v) * irms[-1]
        circuits[c.spec.id] = CircuitTruth(
            circuit=c.spec.id,
            phases=tuple(panel.phases[k] for k in c.phase_index),
            on=on[ci],
            current_rms_a=tuple(irms),
            current_fundamental_a=tuple(i1),
            power_active_w=p_w,
            power_reactive_var=q_var,
            power_apparent_va=s_va,
            power_factor=p_w / s_va if s_va > 0 else 0.0,
            power_factor_displacement=p1 / s1 if s1 > 0 else 0.0,
        )
    residual = rms(rows[panel.residual_row]) if panel.residual_row is not None else None
    channel_rms = {row.channel_id: rms(rows[k]) for k, row in enumerate(panel.rows)}
    return PanelTruth(
        t_s=t_s,
        frequency_hz=frequency_hz,
        voltage_rms_v=vr,
        voltage_fundamental_v=v1,
        voltage_thd_pct=vthd,
        circuits=circuits,
        residual_current_a=residual,
        channel_rms=channel_rms,
        active_events=active_events,
    )
