"""Load models: the current each kind of appliance draws from a given supply voltage.

Every load is a periodic current locked to the fundamental of its supply voltage,
described by harmonic phasors (see :mod:`.spectra`), plus how it reacts to the
voltage magnitude (constant impedance, current or power) and an optional motor
inrush. The models, their parameters and the analytic P/Q/Irms they imply are
listed in docs/simulation.md; :func:`load_model` holds the defaults.

Sign convention: currents are positive into the load, so an exporting inverter has
P < 0. Angles: positive = current leads the voltage (capacitive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from collector.sources.simulated.spectra import (
    ComplexArray,
    FloatArray,
    active_power,
    phasors_from_table,
    time_shift,
)


class LoadType(StrEnum):
    """Appliance models."""

    RESISTIVE = "resistive"
    MOTOR = "motor"
    SMPS = "smps"
    LED_DRIVER = "led_driver"
    EV_CHARGER = "ev_charger"
    HEAT_PUMP = "heat_pump"
    SOLAR_INVERTER = "solar_inverter"


class PfSense(StrEnum):
    """Whether the fundamental current lags (inductive) or leads (capacitive) the voltage."""

    LAGGING = "lagging"
    LEADING = "leading"


class VoltageResponse(StrEnum):
    """How the current magnitude follows the supply voltage magnitude u [pu]."""

    CONSTANT_IMPEDANCE = "constant_impedance"  # i = v / Z: resistive heaters
    CONSTANT_CURRENT = "constant_current"  # motors near rated slip, grid-following inverters
    CONSTANT_POWER = "constant_power"  # regulated converters: i ∝ 1/u (current-limited)


class Waveform(StrEnum):
    """How the current shape is built."""

    FOLLOWS_VOLTAGE = "follows_voltage"  # i = v/R, every voltage harmonic included
    PROFILE = "profile"  # fundamental plus a table of harmonic percentages
    RECTIFIER_PULSE = "rectifier_pulse"  # capacitor-input rectifier: cos² pulses at the peaks


# Below this supply magnitude [pu] electronics and contactors drop out (no current).
DROPOUT_PU = 0.1
# Constant-power loads are current-limited: they hold P only down to this voltage [pu].
CONSTANT_POWER_FLOOR_PU = 0.7
# Resolution of the table a rectifier pulse is Fourier-analysed on (pulses are smooth,
# their orders fall as h^-3, so 8192 points hold orders to 50 with no aliasing to speak of).
_PULSE_TABLE = 8192


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """A load as configured.

    Attributes
    ----------
    type : LoadType
    power_w : float
        Active power at nominal supply voltage [W], total over the circuit's phases,
        > 0. A solar inverter exports this much (its P is negative).
    power_factor : float | None
        Displacement power factor cos φ1 (fundamental only), 0 < pf <= 1; None: the
        type's default.
    pf_sense : PfSense | None
        Lagging or leading; None: the type's default.
    inrush_factor : float | None
        Peak start current / running current (motors), >= 1; None: the type's default.
    inrush_tau_s : float | None
        Time constant of the inrush decay [s]; None: the type's default.
    """

    type: LoadType
    power_w: float
    power_factor: float | None = None
    pf_sense: PfSense | None = None
    inrush_factor: float | None = None
    inrush_tau_s: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.power_w) and self.power_w > 0):
            raise ValueError(f"power_w: must be > 0, got {self.power_w}")
        if self.power_factor is not None and not 0 < self.power_factor <= 1:
            raise ValueError(f"power_factor: must be in (0, 1], got {self.power_factor}")
        if self.inrush_factor is not None and not self.inrush_factor >= 1:
            raise ValueError(f"inrush_factor: must be >= 1, got {self.inrush_factor}")
        if self.inrush_tau_s is not None and not self.inrush_tau_s > 0:
            raise ValueError(f"inrush_tau_s: must be > 0, got {self.inrush_tau_s}")


@dataclass(frozen=True, slots=True)
class LoadModel:
    """A load with every default resolved: what the synthesis uses.

    Attributes
    ----------
    type : LoadType
    power_w : float
        Rated active power magnitude [W] (total over phases).
    displacement_pf : float
        cos φ1.
    pf_sense : PfSense
    exports : bool
        True for generators: the current is reversed and P < 0.
    response : VoltageResponse
    waveform : Waveform
    harmonics_pct : tuple[tuple[int, float, float], ...]
        PROFILE only: (order, magnitude [% of fundamental], angle [deg]) in a frame
        where the fundamental has angle 0.
    pulse_width_deg : float
        RECTIFIER_PULSE only: conduction width of each cos² pulse [deg].
    inrush_factor : float
        |I(t_on)| / |I_running| for a start (1: no inrush).
    inrush_tau_s : float
        Decay time constant of the inrush [s].
    locked_rotor_pf : float
        Displacement PF of the starting current (a stalled induction motor is mostly
        reactive: 0.3..0.4, IEEE Std 399 (Brown Book) motor-starting studies).
    """

    type: LoadType
    power_w: float
    displacement_pf: float
    pf_sense: PfSense
    exports: bool
    response: VoltageResponse
    waveform: Waveform
    harmonics_pct: tuple[tuple[int, float, float], ...] = ()
    pulse_width_deg: float = 0.0
    inrush_factor: float = 1.0
    inrush_tau_s: float = 0.06
    locked_rotor_pf: float = 0.35

    @property
    def fundamental_angle_rad(self) -> float:
        """Angle of the fundamental current relative to the voltage [rad], + = leading."""
        phi = math.acos(self.displacement_pf)
        return phi if self.pf_sense is PfSense.LEADING else -phi


@dataclass(frozen=True, slots=True)
class _Defaults:
    displacement_pf: float
    pf_sense: PfSense
    response: VoltageResponse
    waveform: Waveform
    exports: bool = False
    harmonics_pct: tuple[tuple[int, float, float], ...] = ()
    pulse_width_deg: float = 0.0
    inrush_factor: float = 1.0
    inrush_tau_s: float = 0.06


# Defaults per type. Figures are typical, not from one product:
# - motor: cos φ 0.8 at rated load, direct-on-line start 6x rated current (IEC 60034-12
#   design N motors draw 5..8x), decaying within ~0.2 s for a lightly loaded machine.
# - heat_pump: a three-phase compressor motor, cos φ 0.85; heat pumps are required to
#   limit their starting current (soft starter or inverter drive, cf. the EN 61000-3-3
#   flicker limits), so 3x for 0.1 s.
# - smps: a capacitor-input rectifier without PFC conducts ~60° around each voltage
#   peak: THD ~115 %, crest factor ~2.8, true PF ~0.65 with cos φ1 ~0.996 leading
#   (the pulse starts before the peak). These figures follow from the pulse shape.
# - led_driver: passive-PFC (valley-fill) driver, ~140° conduction: PF ~0.91, THD ~42 %.
# - ev_charger: active PFC (IEC 61851 mode 3 chargers): cos φ 0.99, THD ~4 %.
# - solar_inverter: grid-following, unity cos φ, THD ~2 % (EN 50549 / IEEE 1547 limit 5 %).
_DEFAULTS: Mapping[LoadType, _Defaults] = MappingProxyType({
    LoadType.RESISTIVE: _Defaults(
        1.0, PfSense.LAGGING, VoltageResponse.CONSTANT_IMPEDANCE, Waveform.FOLLOWS_VOLTAGE
    ),
    LoadType.MOTOR: _Defaults(
        0.8,
        PfSense.LAGGING,
        VoltageResponse.CONSTANT_CURRENT,
        Waveform.PROFILE,
        inrush_factor=6.0,
        inrush_tau_s=0.06,
    ),
    LoadType.HEAT_PUMP: _Defaults(
        0.85,
        PfSense.LAGGING,
        VoltageResponse.CONSTANT_CURRENT,
        Waveform.PROFILE,
        inrush_factor=3.0,
        inrush_tau_s=0.1,
    ),
    LoadType.SMPS: _Defaults(
        math.cos(math.radians(5.0)),
        PfSense.LEADING,
        VoltageResponse.CONSTANT_POWER,
        Waveform.RECTIFIER_PULSE,
        pulse_width_deg=60.0,
    ),
    LoadType.LED_DRIVER: _Defaults(
        math.cos(math.radians(10.0)),
        PfSense.LEADING,
        VoltageResponse.CONSTANT_POWER,
        Waveform.RECTIFIER_PULSE,
        pulse_width_deg=140.0,
    ),
    LoadType.EV_CHARGER: _Defaults(
        0.99,
        PfSense.LAGGING,
        VoltageResponse.CONSTANT_POWER,
        Waveform.PROFILE,
        harmonics_pct=((3, 3.0, 0.0), (5, 2.0, 0.0), (7, 1.0, 0.0), (9, 0.5, 0.0), (11, 0.5, 0.0)),
    ),
    LoadType.SOLAR_INVERTER: _Defaults(
        1.0,
        PfSense.LAGGING,
        VoltageResponse.CONSTANT_CURRENT,
        Waveform.PROFILE,
        exports=True,
        harmonics_pct=((3, 1.5, 0.0), (5, 1.0, 0.0), (7, 0.6, 0.0), (9, 0.3, 0.0), (11, 0.3, 0.0)),
    ),
})


def load_model(spec: LoadSpec) -> LoadModel:
    """Resolve a configured load into a model, filling in the type's defaults."""
    d = _DEFAULTS[spec.type]
    return LoadModel(
        type=spec.type,
        power_w=spec.power_w,
        displacement_pf=spec.power_factor if spec.power_factor is not None else d.displacement_pf,
        pf_sense=spec.pf_sense if spec.pf_sense is not None else d.pf_sense,
        exports=d.exports,
        response=d.response,
        waveform=d.waveform,
        harmonics_pct=d.harmonics_pct,
        pulse_width_deg=d.pulse_width_deg,
        inrush_factor=spec.inrush_factor if spec.inrush_factor is not None else d.inrush_factor,
        inrush_tau_s=spec.inrush_tau_s if spec.inrush_tau_s is not None else d.inrush_tau_s,
    )


def rectifier_pulse_table(width_deg: float, n_table: int = _PULSE_TABLE) -> FloatArray:
    """One period of a capacitor-input rectifier current, peak 1, centred on the voltage peaks.

    A cos² pulse of conduction width ``width_deg`` [deg] at θ = 90° and its negative at
    270°: the diode bridge conducts only while the line voltage exceeds the reservoir
    capacitor's, i.e. around each peak.
    """
    if not 0 < width_deg <= 180:
        raise ValueError(f"width_deg: must be in (0, 180], got {width_deg}")
    theta_deg = np.arange(n_table) * (360.0 / n_table)
    out = np.zeros(n_table)
    for centre, sign in ((90.0, 1.0), (270.0, -1.0)):
        u = ((theta_deg - centre + 180.0) % 360.0 - 180.0) / width_deg
        inside = np.abs(u) < 0.5
        out[inside] += sign * np.cos(np.pi * u[inside]) ** 2
    return out


def current_shape(model: LoadModel, h_max: int) -> ComplexArray:
    """Current phasors of orders 0..h_max in the frame of the supply voltage fundamental.

    Scaled to an RMS fundamental of 1 A; the fundamental has the model's displacement
    angle (exports: plus 180°). Not defined for FOLLOWS_VOLTAGE loads (their current
    is v/R and is built from the actual voltage).
    """
    if model.waveform is Waveform.FOLLOWS_VOLTAGE:
        raise ValueError(f"model.waveform: {model.type} follows the voltage; it has no fixed shape")
    base = np.zeros(h_max + 1, dtype=np.complex128)
    if model.waveform is Waveform.RECTIFIER_PULSE:
        base = phasors_from_table(rectifier_pulse_table(model.pulse_width_deg), h_max)
        # the pulse is symmetric about the peak, so its fundamental is at angle 0 already
        base = base / abs(base[1])
    else:
        base[1] = 1.0
        for order, pct, angle_deg in model.harmonics_pct:
            if order <= h_max:
                base[order] = pct / 100.0 * np.exp(1j * math.radians(angle_deg))
    shaped = time_shift(base, model.fundamental_angle_rad)
    return -shaped if model.exports else shaped


def scale_to_power(shape: ComplexArray, ref_voltage: ComplexArray, power_w: float) -> float:
    """Factor that makes ``shape`` draw |P| = ``power_w`` [W] from ``ref_voltage`` [V phasors]."""
    p_unit = abs(active_power(ref_voltage, shape))
    if p_unit == 0.0:
        raise ValueError("shape: draws no active power from the reference voltage")
    return power_w / p_unit


def response_factor(response: VoltageResponse, u_pu: float) -> float:
    """Current multiplier at supply magnitude ``u_pu`` [pu of nominal] for non-resistive loads."""
    if u_pu < DROPOUT_PU:
        return 0.0
    if response is VoltageResponse.CONSTANT_POWER:
        return 1.0 / max(u_pu, CONSTANT_POWER_FLOOR_PU)
    return 1.0


def response_factors(constant_power: NDArray[np.bool_], u_pu: FloatArray) -> FloatArray:
    """:func:`response_factor` for many rows (constant power where flagged, else constant
    current)."""
    cp = 1.0 / np.maximum(u_pu, CONSTANT_POWER_FLOOR_PU)
    out: FloatArray = np.where(u_pu < DROPOUT_PU, 0.0, np.where(constant_power, cp, 1.0))
    return out


def inrush_extra_ratio(model: LoadModel) -> complex:
    """Extra start current at t_on as a multiple of the running fundamental phasor.

    The start current is I_run·(1 + r·e^{-t/τ}) in phasor terms, with r chosen so that
    |1 + r| = inrush_factor and the extra part at the locked-rotor angle:
    r = a·e^{-jΔ}, Δ = φ_lr − φ_run, a solves a² + 2a·cos Δ + 1 − k² = 0.
    Returns 0 for loads without inrush.
    """
    k = model.inrush_factor
    if k <= 1.0:
        return 0j
    phi_run = math.acos(model.displacement_pf)
    delta = math.acos(model.locked_rotor_pf) - phi_run
    a = -math.cos(delta) + math.sqrt(math.cos(delta) ** 2 + k * k - 1.0)
    return complex(a * np.exp(-1j * delta))
