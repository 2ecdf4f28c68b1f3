"""Drive emulated ADS1115 inputs with the simulated panel's waveforms.

The simulated panel renders the physical signals (volts, amperes) at a high rate
with a 24-bit ideal converter; each channel's sensor transfer from the config
turns them into pin voltages, which the emulated chips convert. The panel's
``truth_at`` is the reference: it comes from the model's phasors, not from any
sampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from collector.config import GridGuardConfig, parse_config
from collector.config.system import SystemType
from collector.model import Phase
from collector.sources.hardware.transfer import physical_to_pin, transfer_of
from collector.sources.simulated import (
    AdcSpec,
    CircuitSpec,
    LoadSpec,
    LoadType,
    MainsSpec,
    PanelSpec,
    Sampling,
    SimulatedSource,
)
from tests.hardware.ads1115_emulator import Ads1115Emulator, sampled

RENDER_HZ = 25_600.0
A = Phase.A


def kitchen_panel(*, smps: bool = False) -> PanelSpec:
    """230 V 50 Hz: a kettle (PF 1), a fan motor (PF ~0.8 lagging), optionally a PC."""
    circuits = [
        CircuitSpec("kettle", "Kettle", (A,), LoadSpec(LoadType.RESISTIVE, 2000.0), 16.0),
        CircuitSpec("fan", "Fan", (A,), LoadSpec(LoadType.MOTOR, 750.0), 10.0),
    ]
    if smps:
        circuits.append(CircuitSpec("pc", "PC", (A,), LoadSpec(LoadType.SMPS, 300.0), 10.0))
    return PanelSpec(
        name="kitchen",
        mains=MainsSpec(SystemType.SINGLE_PHASE, 230.0, 50.0),
        adc=AdcSpec(bits=24, sampling=Sampling.SIMULTANEOUS, noise_lsb=0.0),
        sample_rate_hz=RENDER_HZ,
        circuits=tuple(circuits),
    )


@dataclass(frozen=True)
class Wiring:
    """Where a channel is wired: chip address and AIN number."""

    channel: str
    address: int
    ain: int


SENSORS: Mapping[str, dict[str, Any]] = {
    # ZMPT101B module trimmed to 1 V peak at 230 V, biased at mid-rail of 3.3 V
    "v_a": {"type": "zmpt101b", "ratio": 325.0, "zero_v": 1.65},
    # SCT-013 voltage-output clamps (1 V RMS at rated current) on a 1.65 V bias
    "i_kettle": {"type": "sct013", "variant": "030", "zero_v": 1.65},
    "i_fan": {"type": "sct013", "variant": "015", "zero_v": 1.65},
    "i_pc": {"type": "sct013", "variant": "005", "zero_v": 1.65},
}


def ads1115_config(
    wiring: Sequence[Wiring], *, data_rate_sps: int = 860, full_scale_v: float = 4.096,
    continuous: bool = True, calibration: Mapping[str, dict[str, Any]] | None = None,
    polarity: Mapping[str, str] | None = None,
) -> GridGuardConfig:
    addresses = sorted({w.address for w in wiring})
    currents = [w for w in wiring if w.channel.startswith("i_")]
    volts = [w for w in wiring if w.channel.startswith("v_")]

    def channel(w: Wiring) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": w.channel, "phase": "A", "adc": {"device": w.address, "channel": w.ain},
            "sensor": dict(SENSORS[w.channel]),
        }
        if calibration and w.channel in calibration:
            out["calibration"] = calibration[w.channel]
        if polarity and w.channel in polarity:
            out["polarity"] = polarity[w.channel]
        return out

    return parse_config({
        "site": {"id": "bench"},
        "system": {"type": "single_phase", "nominal_voltage_v": 230,
                   "nominal_frequency_hz": 50},
        "source": {"type": "ads1115", "ads1115": {
            "continuous": continuous,
            "devices": [{"address": a, "full_scale_v": full_scale_v,
                         "data_rate_sps": data_rate_sps} for a in addresses],
        }},
        "channels": {"voltage": [channel(w) for w in volts],
                     "current": [channel(w) for w in currents]},
        "circuits": [
            {"id": w.channel.removeprefix("i_"), "phases": ["A"],
             "current_channels": [w.channel], "breaker_rating_a": 16}
            for w in currents
        ],
    })


def chips_for(
    cfg: GridGuardConfig,
    sim: SimulatedSource,
    wiring: Sequence[Wiring],
    duration_s: float,
    *,
    rate_errors: Mapping[int, float] | None = None,
    noise_lsb: float = 1.0,
) -> dict[int, Ads1115Emulator]:
    """Emulated chips whose inputs carry the panel's signals through the sensors."""
    data = sim.generate(0, round(duration_s * RENDER_HZ))
    ids = [c.id for c in sim.capabilities.channels]
    chips: dict[int, Ads1115Emulator] = {}
    for k, w in enumerate(wiring):
        chip = chips.get(w.address)
        if chip is None:
            chip = Ads1115Emulator(
                w.address, rate_error=(rate_errors or {}).get(w.address, 0.0),
                noise_lsb=noise_lsb, seed=k,
            )
            chips[w.address] = chip
        pin = physical_to_pin(data[ids.index(w.channel)], transfer_of(cfg.channel(w.channel)))
        chip.inputs[w.ain] = sampled(0.0, RENDER_HZ, np.asarray(pin))
    return chips
