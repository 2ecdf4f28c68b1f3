"""A configured channel's calibration: inline values or the file `gridguard calibrate` wrote."""

from __future__ import annotations

from pathlib import Path

from collector.calibration.apply import IDENTITY, ChannelCalibration, points_from_pairs
from collector.calibration.file_format import (
    CalibrationFile,
    channel_calibration,
    read_calibration,
)
from collector.config.channels import AnyChannel


def calibration_for(
    channel: AnyChannel,
    *,
    base_dir: Path | None = None,
    cache: dict[Path, CalibrationFile] | None = None,
) -> ChannelCalibration:
    """The correction for ``channel`` (identity when it has none).

    Parameters
    ----------
    channel : AnyChannel
    base_dir : Path | None
        Directory relative file paths are resolved against (``load_config`` has
        already made them absolute; this is for configs parsed without a file).
    cache : dict | None
        Files already read, so several channels sharing one file read it once.
    """
    cfg = channel.calibration
    if cfg is None:
        return IDENTITY
    if cfg.file is not None:
        path = cfg.file if cfg.file.is_absolute() or base_dir is None else base_dir / cfg.file
        loaded = cache.get(path) if cache is not None else None
        if loaded is None:
            loaded = read_calibration(path)
            if cache is not None:
                cache[path] = loaded
        resolved = channel_calibration(loaded, channel.id, source=path)
        # an explicit id in the config names the calibration for the quality fields
        if cfg.id is not None and cfg.id != resolved.id:
            return ChannelCalibration(
                id=cfg.id,
                offset=resolved.offset,
                gain=resolved.gain,
                gain_points=resolved.gain_points,
                phase_deg=resolved.phase_deg,
                gain_uncertainty_pct=resolved.gain_uncertainty_pct,
                phase_uncertainty_deg=resolved.phase_uncertainty_deg,
            )
        return resolved
    return ChannelCalibration(
        id=channel.calibration_id,
        offset=cfg.offset,
        gain=cfg.gain,
        gain_points=points_from_pairs([(p.reading, p.reference) for p in cfg.gain_points]),
        phase_deg=cfg.phase_deg,
    )
