"""PCM WAV recordings with an optional YAML sidecar that says what the channels are.

A WAV file carries samples and a rate, nothing about volts or amperes. The sidecar
``<name>.wav.yaml`` (or ``<name>.yaml``) gives each channel an id, a quantity, a
phase and a scale (physical units per count); the schema is documented in
docs/recordings.md. Without a sidecar every channel is an uncalibrated voltage in
counts, and that is said loudly.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from collector.model import NS_PER_S, Phase, Quantity
from collector.sources.errors import RecordingError

log = logging.getLogger(__name__)

_PCM, _IEEE_FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


@dataclass(frozen=True, slots=True)
class WavChannel:
    """One WAV channel and its meaning; ``physical = scale * count + offset``."""

    number: int  # 1-based position in the WAV frame
    id: str
    quantity: Quantity
    phase: Phase | None
    circuit: str | None
    scale: float  # physical units (V or A) per count; 1.0 when uncalibrated
    offset: float


@dataclass(frozen=True, slots=True, eq=False)
class WavRecording:
    """A decoded WAV file; ``values`` has shape (n_channels, n_samples), read-only.

    ``values`` is in V or A when ``calibrated`` (a sidecar gave the scales), in raw
    counts otherwise. ``full_scale_counts`` is the largest count magnitude of an
    integer format (None for float WAVs, which have no hard limit).
    """

    path: Path
    sidecar: Path | None
    fs_hz: float
    bits_per_sample: int
    sample_format: str  # "int" or "float"
    channels: tuple[WavChannel, ...]
    values: NDArray[np.float64]
    start_ns: int
    nominal_frequency_hz: float | None
    nominal_voltage_v: float | None
    calibrated: bool
    full_scale_counts: float | None
    notes: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        return int(self.values.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs_hz


# --------------------------------------------------------------------------- sidecar

# electricians write L1/L2/L3, R/S/T or 1/2/3 as often as A/B/C
_PHASE_ALIASES = MappingProxyType({
    "L1": "A", "L2": "B", "L3": "C", "R": "A", "S": "B", "T": "C",
    "1": "A", "2": "B", "3": "C", "PE": "G", "E": "G",
})


def _norm_phase(value: Any) -> Any:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip().upper()
        return _PHASE_ALIASES.get(text, text)
    return value


class SidecarChannel(BaseModel):
    """One channel of the sidecar's ``channels`` list, in WAV channel order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)
    quantity: Quantity
    phase: Annotated[Phase | None, BeforeValidator(_norm_phase)] = None
    circuit: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    scale: float = Field(default=1.0, allow_inf_nan=False)
    offset: float = Field(default=0.0, allow_inf_nan=False)


class Sidecar(BaseModel):
    """The YAML sidecar of a WAV recording (docs/recordings.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_time: datetime | None = None
    nominal_frequency_hz: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    nominal_voltage_v: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    channels: list[SidecarChannel] = Field(min_length=1)


def sidecar_path(wav_path: Path) -> Path | None:
    """The sidecar next to ``wav_path``: ``<name>.wav.yaml`` first, then ``<name>.yaml``."""
    for candidate in (wav_path.with_name(wav_path.name + ".yaml"), wav_path.with_suffix(".yaml")):
        if candidate.is_file():
            return candidate
    return None


def load_sidecar(path: Path) -> Sidecar:
    """Read and validate a sidecar; errors name the key path (``channels[1].scale``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(path, f"cannot read sidecar: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecordingError(path, f"not valid YAML: {problem}", line) from exc
    if not isinstance(data, dict):
        raise RecordingError(path, "sidecar must be a mapping with a 'channels' list")
    try:
        return Sidecar.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:3]:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            value = err.get("input")
            got = "" if isinstance(value, (dict, list)) else f", got {value!r}"
            problems.append(f"{where.lstrip('.') or 'sidecar'}: {err['msg']}{got}")
        raise RecordingError(path, "; ".join(problems)) from exc


# --------------------------------------------------------------------------- WAV


@dataclass(frozen=True, slots=True)
class _Format:
    tag: int
    channels: int
    rate: int
    block_align: int
    bits: int


def read_wav(path: Path | str, sidecar: Path | str | None = None) -> WavRecording:
    """Read a PCM (8/16/24/32-bit int) or IEEE-float (32/64-bit) WAV file.

    ``sidecar`` defaults to :func:`sidecar_path`. Raises :class:`RecordingError`
    for anything unreadable.
    """
    path = Path(path)
    side = Path(sidecar) if sidecar is not None else sidecar_path(path)
    meta = load_sidecar(side) if side is not None else None
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise RecordingError(path, "file not found") from exc
    except OSError as exc:
        raise RecordingError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        fmt, data, notes = _parse_riff(raw, path)
        counts = _decode_samples(fmt, data, path)
    except (ValueError, struct.error, IndexError) as exc:
        raise RecordingError(path, f"malformed WAV file: {exc}") from exc
    if fmt.tag == _IEEE_FLOAT:
        full_scale = None
        sample_format = "float"
    else:
        full_scale = float(2 ** (fmt.bits - 1))
        sample_format = "int"
    if meta is None:
        return _uncalibrated(path, fmt, counts, full_scale, sample_format, notes)
    if len(meta.channels) != fmt.channels:
        raise RecordingError(
            side or path, f"channels: the sidecar describes {len(meta.channels)} channels, "
            f"{path.name} has {fmt.channels}"
        )
    ids = [c.id for c in meta.channels]
    if len(set(ids)) != len(ids):
        raise RecordingError(side or path, f"channels: ids must be unique, got {ids}")
    channels = tuple(
        WavChannel(number=k + 1, id=c.id, quantity=c.quantity, phase=c.phase,
                   circuit=c.circuit if c.quantity is not Quantity.VOLTAGE else None,
                   scale=c.scale, offset=c.offset)
        for k, c in enumerate(meta.channels)
    )
    scale = np.array([c.scale for c in channels])[:, None]
    offset = np.array([c.offset for c in channels])[:, None]
    values = counts * scale + offset
    if meta.start_time is not None:
        start_ns = _datetime_ns(meta.start_time)
    else:
        start_ns = _mtime_ns(path)
        notes.append("sidecar gives no start_time: the file's modification time is used")
    return WavRecording(
        path=path, sidecar=side, fs_hz=float(fmt.rate), bits_per_sample=fmt.bits,
        sample_format=sample_format, channels=channels, values=_frozen(values),
        start_ns=start_ns, nominal_frequency_hz=meta.nominal_frequency_hz,
        nominal_voltage_v=meta.nominal_voltage_v, calibrated=True,
        full_scale_counts=full_scale, notes=tuple(notes),
    )


def _uncalibrated(
    path: Path, fmt: _Format, counts: NDArray[np.float64], full_scale: float | None,
    sample_format: str, notes: list[str],
) -> WavRecording:
    warning = (f"{path.name}: no sidecar ({path.name}.yaml): channels are UNCALIBRATED "
               "voltages in raw counts, start time = file modification time")
    log.warning("%s", warning)
    notes.append(warning)
    channels = tuple(
        WavChannel(number=k + 1, id=f"ch{k + 1}", quantity=Quantity.VOLTAGE, phase=None,
                   circuit=None, scale=1.0, offset=0.0)
        for k in range(fmt.channels)
    )
    return WavRecording(
        path=path, sidecar=None, fs_hz=float(fmt.rate), bits_per_sample=fmt.bits,
        sample_format=sample_format, channels=channels, values=_frozen(counts),
        start_ns=_mtime_ns(path), nominal_frequency_hz=None, nominal_voltage_v=None,
        calibrated=False, full_scale_counts=full_scale, notes=tuple(notes),
    )


def _parse_riff(raw: bytes, path: Path) -> tuple[_Format, bytes, list[str]]:
    notes: list[str] = []
    if len(raw) == 0:
        raise RecordingError(path, "empty file: expected a RIFF/WAVE file")
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        kind = "RF64" if raw[:4] == b"RF64" else repr(raw[:4])
        raise RecordingError(path, f"not a RIFF/WAVE file (starts with {kind})")
    fmt: _Format | None = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id = raw[pos:pos + 4]
        size = struct.unpack_from("<I", raw, pos + 4)[0]
        body_at = pos + 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(raw[body_at:body_at + size], path)
        elif chunk_id == b"data":
            if fmt is None:
                raise RecordingError(path, "data chunk before the fmt chunk")
            available = len(raw) - body_at
            if size > available:
                # streaming writers leave the size unset (0xFFFFFFFF) or the copy was cut
                notes.append(f"data chunk declares {size} bytes, {available} present: "
                             "read what is there")
                size = available
            usable = size - size % fmt.block_align
            if usable != size:
                notes.append(f"{size - usable} bytes of a partial last frame ignored")
            return fmt, raw[body_at:body_at + usable], notes
        pos = body_at + size + (size & 1)  # chunks are word aligned
    raise RecordingError(path, "no data chunk" if fmt is not None else "no fmt chunk")


def _parse_fmt(body: bytes, path: Path) -> _Format:
    if len(body) < 16:
        raise RecordingError(path, f"fmt chunk is {len(body)} bytes, expected at least 16")
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 26:
            raise RecordingError(path, "WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the SubFormat GUID
    if tag not in (_PCM, _IEEE_FLOAT):
        raise RecordingError(path, f"format tag 0x{tag:04x}: only PCM (1) and IEEE float (3) "
                             "are supported")
    if channels < 1 or rate < 1:
        raise RecordingError(path, f"fmt: {channels} channels at {rate} Hz is not a recording")
    allowed = (8, 16, 24, 32) if tag == _PCM else (32, 64)
    if bits not in allowed:
        kind = "PCM" if tag == _PCM else "float"
        raise RecordingError(path, f"{bits}-bit {kind} samples: expected one of {allowed}")
    if align != channels * bits // 8:
        raise RecordingError(path, f"block align {align}: expected {channels} x {bits // 8} bytes")
    return _Format(tag, channels, rate, align, bits)


def _decode_samples(fmt: _Format, data: bytes, path: Path) -> NDArray[np.float64]:
    n = len(data) // fmt.block_align
    if n == 0:
        raise RecordingError(path, "data chunk holds no samples")
    if fmt.tag == _IEEE_FLOAT:
        frames = np.frombuffer(data, dtype="<f4" if fmt.bits == 32 else "<f8")
        counts = frames.astype(np.float64)
    elif fmt.bits == 8:
        counts = np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0  # offset binary
    elif fmt.bits == 24:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        word = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        counts = (word - ((word & 0x800000) << 1)).astype(np.float64)
    else:
        counts = np.frombuffer(data, dtype="<i2" if fmt.bits == 16 else "<i4").astype(np.float64)
    return counts.reshape(n, fmt.channels).T.copy()


def _datetime_ns(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # documented: a naive start_time means UTC
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def _mtime_ns(path: Path) -> int:
    return os.stat(path).st_mtime_ns


def _frozen(x: NDArray[np.float64]) -> NDArray[np.float64]:
    x = np.ascontiguousarray(x)
    x.setflags(write=False)
    return x


def full_scale_physical(channel: WavChannel, full_scale_counts: float | None) -> float | None:
    """Largest magnitude channel ``channel`` can represent [V or A]; None for float WAVs."""
    if full_scale_counts is None:
        return None
    ends = (channel.scale * -full_scale_counts + channel.offset,
            channel.scale * (full_scale_counts - 1) + channel.offset)
    return max(abs(e) for e in ends) if all(math.isfinite(e) for e in ends) else None
