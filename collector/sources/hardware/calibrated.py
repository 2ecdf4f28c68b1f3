"""Applying the channels' calibrations to a :class:`~.samples.SampleSet`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from collector.calibration.apply import ChannelCalibration, apply_offset_gain, phase_skew_s
from collector.model import NS_PER_S
from collector.sources.hardware.samples import SampleSet


def calibrate_sample_set(
    samples: SampleSet, calibrations: Mapping[str, ChannelCalibration], f_nominal_hz: float
) -> SampleSet:
    """Offset and gain applied to the values, the phase lead to the instants.

    Channels without an entry are returned unchanged. The gain of gain points
    follows the RMS of the whole window.
    """
    out = []
    for ch in samples.channels:
        cal = calibrations.get(ch.info.id)
        if cal is None:
            out.append(ch)
            continue
        shift_ns = round(phase_skew_s(cal, f_nominal_hz) * NS_PER_S)
        out.append(replace(
            ch,
            info=replace(ch.info, calibration_id=cal.id),
            values=apply_offset_gain(ch.values, cal),
            t_ns=ch.t_ns + np.int64(shift_ns),
        ))
    return replace(samples, channels=tuple(out))
