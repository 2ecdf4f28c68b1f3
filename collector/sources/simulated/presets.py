"""Ready-made panels: an EU house, a US house and a small three-phase commercial board.

Schedules use periods of tens of seconds to minutes so that a two-minute demo shows
loads switching; real appliances cycle more slowly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from collector.config.system import SystemType
from collector.model import Phase
from collector.sources.simulated.adc import AdcSpec, Sampling
from collector.sources.simulated.loads import LoadSpec, LoadType
from collector.sources.simulated.mains import MainsSpec, SupplyImpedance
from collector.sources.simulated.panel import CircuitSpec, PanelSpec, Schedule

A, B, C = Phase.A, Phase.B, Phase.C
ABC = (A, B, C)


def _c(
    cid: str,
    name: str,
    phases: tuple[Phase, ...],
    load: LoadType,
    power_w: float,
    breaker_a: float,
    *,
    critical: bool = False,
    schedule: Schedule | None = None,
) -> CircuitSpec:
    return CircuitSpec(cid, name, phases, LoadSpec(load, power_w), breaker_a, critical, schedule)


def home_single_phase_230v() -> PanelSpec:
    """EU house: 230 V 50 Hz single phase, 8 circuits, RCD-style residual CT,
    a 12-bit multiplexed converter (MCP3208-class) at 6.4 kS/s per channel."""
    return PanelSpec(
        name="home_single_phase_230v",
        mains=MainsSpec(
            SystemType.SINGLE_PHASE, 230.0, 50.0, impedance=SupplyImpedance.iec_60725()
        ),
        adc=AdcSpec(bits=12, sampling=Sampling.MULTIPLEXED, noise_lsb=0.5),
        sample_rate_hz=6400.0,
        residual_channel=True,
        circuits=(
            _c(
                "kitchen",
                "Kitchen sockets",
                (A,),
                LoadType.RESISTIVE,
                2000.0,
                20.0,
                schedule=Schedule(120.0, 45.0, 10.0),
            ),
            _c("lighting", "Lighting", (A,), LoadType.LED_DRIVER, 180.0, 10.0),
            _c("living", "Living room (TV, PC)", (A,), LoadType.SMPS, 350.0, 16.0),
            _c(
                "fridge",
                "Fridge",
                (A,),
                LoadType.MOTOR,
                150.0,
                10.0,
                critical=True,
                schedule=Schedule(90.0, 50.0, 5.0),
            ),
            _c(
                "washer",
                "Washing machine",
                (A,),
                LoadType.MOTOR,
                500.0,
                16.0,
                schedule=Schedule(150.0, 60.0, 40.0),
            ),
            _c(
                "water_heater",
                "Water heater",
                (A,),
                LoadType.RESISTIVE,
                3000.0,
                16.0,
                schedule=Schedule(300.0, 100.0, 60.0),
            ),
            _c(
                "ev",
                "EV charger 7.4 kW",
                (A,),
                LoadType.EV_CHARGER,
                7400.0,
                40.0,
                schedule=Schedule(600.0, 300.0, 30.0),
            ),
            _c("network", "Router and NAS", (A,), LoadType.SMPS, 60.0, 10.0, critical=True),
        ),
    )


def home_split_phase_240v() -> PanelSpec:
    """US house: 120/240 V 60 Hz split phase, 8 circuits (three of them 240 V),
    a 12-bit multiplexed converter at 7.68 kS/s per channel (128 samples per cycle)."""
    return PanelSpec(
        name="home_split_phase_240v",
        mains=MainsSpec(
            SystemType.SPLIT_PHASE, 120.0, 60.0, impedance=SupplyImpedance(0.03, 0.02, 0.03, 0.02)
        ),
        adc=AdcSpec(bits=12, sampling=Sampling.MULTIPLEXED, noise_lsb=0.5),
        sample_rate_hz=7680.0,
        residual_channel=False,
        circuits=(
            _c(
                "kitchen",
                "Kitchen counter",
                (A,),
                LoadType.RESISTIVE,
                1500.0,
                20.0,
                schedule=Schedule(120.0, 40.0, 15.0),
            ),
            _c("lighting", "Lighting", (B,), LoadType.LED_DRIVER, 200.0, 15.0),
            _c("living", "Living room", (A,), LoadType.SMPS, 400.0, 15.0),
            _c(
                "fridge",
                "Refrigerator",
                (B,),
                LoadType.MOTOR,
                200.0,
                15.0,
                critical=True,
                schedule=Schedule(90.0, 50.0, 5.0),
            ),
            _c("office", "Home office", (B,), LoadType.SMPS, 250.0, 15.0),
            _c(
                "dryer",
                "Clothes dryer 240 V",
                (A, B),
                LoadType.RESISTIVE,
                5000.0,
                30.0,
                schedule=Schedule(240.0, 90.0, 60.0),
            ),
            _c(
                "ac",
                "Air conditioner 240 V",
                (A, B),
                LoadType.MOTOR,
                3500.0,
                30.0,
                schedule=Schedule(180.0, 110.0, 20.0),
            ),
            _c(
                "ev",
                "EV charger 240 V",
                (A, B),
                LoadType.EV_CHARGER,
                7200.0,
                40.0,
                schedule=Schedule(600.0, 300.0, 100.0),
            ),
        ),
    )


def three_phase_panel() -> PanelSpec:
    """Small business: 230/400 V 50 Hz, 12 circuits, 3 voltages, residual CT,
    16-bit simultaneous sampling at 6.4 kS/s. The benchmark and demo panel."""
    return PanelSpec(
        name="three_phase_panel",
        mains=MainsSpec(SystemType.THREE_PHASE, 230.0, 50.0, impedance=SupplyImpedance.iec_60725()),
        adc=AdcSpec(bits=16, sampling=Sampling.SIMULTANEOUS, noise_lsb=0.7),
        sample_rate_hz=6400.0,
        residual_channel=True,
        circuits=(
            _c(
                "ev_charger",
                "EV charger 11 kW",
                ABC,
                LoadType.EV_CHARGER,
                11000.0,
                20.0,
                schedule=Schedule(300.0, 180.0, 30.0),
            ),
            _c(
                "heat_pump",
                "Heat pump",
                ABC,
                LoadType.HEAT_PUMP,
                6000.0,
                16.0,
                schedule=Schedule(180.0, 120.0, 15.0),
            ),
            _c("solar", "Solar inverter 8 kW", ABC, LoadType.SOLAR_INVERTER, 8000.0, 16.0),
            _c("office_a", "Office A (PCs)", (A,), LoadType.SMPS, 1500.0, 16.0),
            _c("office_b", "Office B (PCs)", (B,), LoadType.SMPS, 1200.0, 16.0),
            _c(
                "office_c",
                "Office C (printers)",
                (C,),
                LoadType.SMPS,
                1000.0,
                16.0,
                schedule=Schedule(60.0, 25.0, 12.0),
            ),
            _c("lighting", "Lighting", (A,), LoadType.LED_DRIVER, 800.0, 10.0),
            _c(
                "kitchen",
                "Kitchenette",
                (B,),
                LoadType.RESISTIVE,
                3000.0,
                16.0,
                schedule=Schedule(120.0, 45.0, 20.0),
            ),
            _c("server", "Server rack", (C,), LoadType.SMPS, 600.0, 10.0, critical=True),
            _c(
                "workshop",
                "Workshop compressor",
                (C,),
                LoadType.MOTOR,
                1100.0,
                16.0,
                schedule=Schedule(90.0, 30.0, 45.0),
            ),
            _c(
                "water_heater",
                "Water heater",
                (A,),
                LoadType.RESISTIVE,
                2000.0,
                16.0,
                schedule=Schedule(240.0, 120.0, 50.0),
            ),
            _c("ventilation", "Ventilation fan", (B,), LoadType.MOTOR, 750.0, 10.0),
        ),
    )


PRESETS: Mapping[str, Callable[[], PanelSpec]] = MappingProxyType(
    {
        "home_single_phase_230v": home_single_phase_230v,
        "home_split_phase_240v": home_split_phase_240v,
        "three_phase_panel": three_phase_panel,
    }
)


def preset(name: str) -> PanelSpec:
    """A preset panel by name."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f"no panel preset {name!r}; have {sorted(PRESETS)}") from None
