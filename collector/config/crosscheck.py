"""Checks that span sections: references between ids, phases vs the supply, pins, ADC inputs.

Run by GridGuardConfig after every section validated, and by ``parse_config`` on
the sections that did validate when others did not, so one pass reports every
problem. Each check skips itself when a section it needs is missing (invalid).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from collector.config.alerts import AlertsConfig
from collector.config.channels import AnyChannel, ChannelsConfig, VoltageChannel
from collector.config.circuits import CircuitConfig
from collector.config.errors import Loc, LocatedProblem, format_path, format_value
from collector.config.load_control import LoadControlConfig
from collector.config.source import SourceConfig, SourceType
from collector.config.system import SystemConfig, line_phases
from collector.config.thresholds import Thresholds
from collector.model import Phase


@dataclass(frozen=True, slots=True)
class Sections:
    """The sections the cross checks read; None when a section itself was invalid."""

    system: SystemConfig | None
    source: SourceConfig | None
    channels: ChannelsConfig | None
    circuits: tuple[CircuitConfig, ...] | None
    thresholds: Thresholds | None
    load_control: LoadControlConfig | None
    alerts: AlertsConfig | None
    # When only some circuits validated: their positions in the file, and the ids of
    # the others (references to those are not reported as unknown).
    circuit_indices: tuple[int, ...] | None = None
    unvalidated_circuit_ids: frozenset[str] = frozenset()


# (position in the file, circuit)
Indexed = tuple[tuple[int, CircuitConfig], ...]


def cross_check(s: Sections) -> list[LocatedProblem]:
    """Every cross-section problem, located from the top of the configuration."""
    problems: list[LocatedProblem] = []
    if s.system is not None and s.channels is not None:
        problems += _channel_phases(s.system, s.channels)
    if s.circuits is not None:
        indices = s.circuit_indices or range(len(s.circuits))
        circuits: Indexed = tuple(zip(indices, s.circuits, strict=True))
        problems += _circuit_ids(circuits, s.channels)
        if s.system is not None:
            problems += _circuit_phases(s.system, circuits)
        if s.channels is not None:
            problems += _circuit_channels(circuits, s.channels)
        if s.load_control is not None:
            problems += _load_control(
                s.load_control, circuits, s.thresholds, s.unvalidated_circuit_ids
            )
    if s.source is not None and s.channels is not None:
        problems += _adc_refs(s.source, s.channels)
    if s.load_control is not None and s.alerts is not None and s.source is not None:
        problems += _gpio_pins(s.load_control, s.alerts, s.source)
    if s.thresholds is not None and s.system is not None:
        lo, hi = s.thresholds.frequency.band_for(s.system.nominal_frequency_hz)
        if not lo < s.system.nominal_frequency_hz < hi:
            problems.append(LocatedProblem(
                ("thresholds", "frequency", "band_hz"),
                f"must contain the nominal frequency {s.system.nominal_frequency_hz} Hz",
                format_value([lo, hi]),
            ))
    return problems


def _channel_phases(system: SystemConfig, channels: ChannelsConfig) -> Iterator[LocatedProblem]:
    allowed = line_phases(system.type)
    names = "/".join(sorted(p.value for p in allowed))
    for kind, k, ch in channels.all():
        if kind == "residual":
            continue
        ok = allowed | ({Phase.N} if kind == "current" else set())
        if ch.phase not in ok:
            yield LocatedProblem(
                ("channels", kind, k, "phase"),
                f"a {system.type.value} system has phases {names}"
                + (" (and N for a neutral CT)" if kind == "current" else ""),
                repr(ch.phase.value),
            )


def _circuit_ids(
    circuits: Indexed, channels: ChannelsConfig | None
) -> Iterator[LocatedProblem]:
    seen: dict[str, int] = {}
    voltage_ids = {ch.id for ch in channels.voltage} if channels is not None else set()
    for k, c in circuits:
        if c.id in seen:
            yield LocatedProblem(
                ("circuits", k, "id"), f"duplicate circuit id, also circuits[{seen[c.id]}]",
                repr(c.id),
            )
        seen.setdefault(c.id, k)
        if c.id in voltage_ids:
            # voltage channels are stored under the same `circuit` tag as circuits
            yield LocatedProblem(
                ("circuits", k, "id"), "is also a voltage channel id; both end up in the "
                "InfluxDB `circuit` tag, so they must differ", repr(c.id),
            )


def _circuit_phases(
    system: SystemConfig, circuits: Indexed
) -> Iterator[LocatedProblem]:
    allowed = line_phases(system.type)
    names = "/".join(sorted(p.value for p in allowed))
    for k, c in circuits:
        for j, ph in enumerate(c.phases):
            if ph not in allowed and ph not in (Phase.N, Phase.G):
                yield LocatedProblem(
                    ("circuits", k, "phases", j),
                    f"a {system.type.value} system has phases {names}", repr(ph.value),
                )


def _kind_of(channels: ChannelsConfig, channel_id: str) -> str | None:
    return next((kind for kind, _, ch in channels.all() if ch.id == channel_id), None)


def _circuit_channels(
    circuits: Indexed, channels: ChannelsConfig
) -> Iterator[LocatedProblem]:
    current = {ch.id: ch for ch in channels.current}
    voltage = {ch.id: ch for ch in channels.voltage}
    owner: dict[str, int] = {}
    by_index = dict(circuits)
    for k, c in circuits:
        phases = set(c.phases)
        ct_phases: dict[Phase, str] = {}
        for j, cid in enumerate(c.current_channels):
            loc: Loc = ("circuits", k, "current_channels", j)
            if cid not in current:
                kind = _kind_of(channels, cid)
                if kind is not None:
                    message = f"is a {kind} channel, not a current channel"
                elif current:
                    message = "no such current channel; have " + ", ".join(sorted(current))
                else:
                    message = "no such current channel (channels.current is empty)"
                yield LocatedProblem(loc, message, repr(cid))
                continue
            if cid in owner and owner[cid] != k:
                yield LocatedProblem(
                    loc, f"already belongs to circuits[{owner[cid]}] ({by_index[owner[cid]].id})",
                    repr(cid),
                )
            owner.setdefault(cid, k)
            ph = current[cid].phase
            if ph is Phase.N:
                continue
            if ph not in phases:
                yield LocatedProblem(
                    loc, f"is on phase {ph.value}, but the circuit is on "
                    + "/".join(p.value for p in c.phases), repr(cid),
                )
            elif ph in ct_phases:
                yield LocatedProblem(
                    loc, f"is a second CT on phase {ph.value} (also {ct_phases[ph]!r})", repr(cid)
                )
            else:
                ct_phases[ph] = cid
        missing = [p.value for p in c.phases if p not in ct_phases]
        if missing and not any(
            cid not in current or current[cid].phase not in phases for cid in c.current_channels
        ):
            yield LocatedProblem(
                ("circuits", k, "current_channels"),
                "needs one current channel per phase; none on " + "/".join(missing),
                format_value(list(c.current_channels)),
            )
        yield from _circuit_voltages(k, c, channels, voltage)


def _circuit_voltages(
    k: int, c: CircuitConfig, channels: ChannelsConfig, voltage: Mapping[str, VoltageChannel]
) -> Iterator[LocatedProblem]:
    if c.voltage_channels is None:
        for ph in c.phases:
            on_phase = [ch.id for ch in channels.voltage if ch.phase is ph]
            if not on_phase:
                yield LocatedProblem(
                    ("circuits", k, "phases"),
                    f"no voltage channel on phase {ph.value} to measure power with; add one "
                    "to channels.voltage",
                    format_value([p.value for p in c.phases]),
                )
            elif len(on_phase) > 1:
                yield LocatedProblem(
                    ("circuits", k, "voltage_channels"),
                    f"is required: several voltage channels on phase {ph.value} ("
                    + ", ".join(on_phase) + ")",
                )
        return
    seen: set[Phase] = set()
    for j, vid in enumerate(c.voltage_channels):
        loc: Loc = ("circuits", k, "voltage_channels", j)
        if vid not in voltage:
            kind = _kind_of(channels, vid)
            yield LocatedProblem(
                loc,
                f"is a {kind} channel, not a voltage channel" if kind else
                "no such voltage channel; have " + ", ".join(sorted(voltage)),
                repr(vid),
            )
            continue
        ph = voltage[vid].phase
        if ph not in c.phases:
            # Power from the voltage of another phase is silently wrong by the phase angle.
            yield LocatedProblem(
                loc, f"is on phase {ph.value}, but the circuit is on "
                + "/".join(p.value for p in c.phases), repr(vid),
            )
        elif ph in seen:
            yield LocatedProblem(loc, f"is a second voltage channel on phase {ph.value}", repr(vid))
        seen.add(ph)
    missing = [p.value for p in c.phases if p not in seen]
    if missing and len(c.voltage_channels) < len(c.phases):
        yield LocatedProblem(
            ("circuits", k, "voltage_channels"),
            "needs one voltage channel per phase; none on " + "/".join(missing),
            format_value(list(c.voltage_channels)),
        )


# ADS1115 MUX[2:0] (SBAS444 Table 8): differential pairs the converter offers.
_ADS1115_PAIRS = frozenset({(0, 1), (0, 3), (1, 3), (2, 3)})
# MCP3008 Table 5-2: pseudo-differential pairs are neighbours, either polarity.
_MCP3008_PAIRS = frozenset(
    {(a, a + 1) for a in (0, 2, 4, 6)} | {(a + 1, a) for a in (0, 2, 4, 6)}
)


def _adc_refs(source: SourceConfig, channels: ChannelsConfig) -> Iterator[LocatedProblem]:
    if source.type in (SourceType.SIMULATED, SourceType.REPLAY):
        return
    used: dict[tuple[int | None, int], str] = {}
    pzem_used: dict[tuple[int, str], str] = {}
    for kind, k, ch in channels.all():
        base: Loc = ("channels", kind, k)
        here = f"channels.{kind}[{k}]"
        if source.type is SourceType.PZEM:
            yield from _pzem_ref(source, kind, base, ch, here, pzem_used)
            continue
        if ch.adc is None:
            yield LocatedProblem((*base, "adc"), f"is required when source.type is {source.type}")
        if ch.sensor is None:
            yield LocatedProblem(
                (*base, "sensor"), f"is required when source.type is {source.type}"
            )
        if ch.adc is None:
            continue
        ref = ch.adc
        if source.type is SourceType.ADS1115 and source.ads1115 is not None:
            addresses = [d.address for d in source.ads1115.devices]
            device = ref.device
            if device is None and len(addresses) == 1:
                device = addresses[0]
            if device is None:
                yield LocatedProblem(
                    (*base, "adc", "device"),
                    "is required: several ADS1115 on the bus ("
                    + ", ".join(f"0x{a:02X}" for a in addresses) + ")",
                )
            elif device not in addresses:
                yield LocatedProblem(
                    (*base, "adc", "device"),
                    "is not in source.ads1115.devices ("
                    + ", ".join(f"0x{a:02X}" for a in addresses) + ")",
                    f"0x{device:02X}",
                )
            max_input, pairs, dev_key = 3, _ADS1115_PAIRS, device
        elif source.type is SourceType.MCP3008 and source.mcp3008 is not None:
            if ref.device is not None and ref.device != source.mcp3008.spi_device:
                yield LocatedProblem(
                    (*base, "adc", "device"),
                    f"must be source.mcp3008.spi_device ({source.mcp3008.spi_device}) or omitted",
                    str(ref.device),
                )
            max_input, pairs, dev_key = 7, _MCP3008_PAIRS, None
        else:
            continue
        if ref.channel is None and ref.differential is None:
            yield LocatedProblem((*base, "adc"), "needs channel or differential")
        if ref.channel is not None and ref.channel > max_input:
            yield LocatedProblem(
                (*base, "adc", "channel"), f"must be 0..{max_input} for {source.type}",
                str(ref.channel),
            )
        if ref.differential is not None and tuple(ref.differential) not in pairs:
            offered = ", ".join(f"[{a},{b}]" for a, b in sorted(pairs))
            yield LocatedProblem(
                (*base, "adc", "differential"),
                f"{source.type} offers the pairs {offered}",
                format_value(list(ref.differential)),
            )
        for pin in ref.inputs:
            key = (dev_key, pin)
            if key in used:
                yield LocatedProblem(
                    (*base, "adc"), f"input {pin} is already used by {used[key]}",
                    ref.describe(),
                )
            used.setdefault(key, here)


def _pzem_ref(
    source: SourceConfig, kind: str, base: Loc, ch: AnyChannel, here: str,
    used: dict[tuple[int, str], str],
) -> Iterator[LocatedProblem]:
    if source.pzem is None:
        return
    if kind == "residual":
        yield LocatedProblem(base, "a PZEM-004T cannot measure residual current")
        return
    if ch.sensor is not None:
        yield LocatedProblem(
            (*base, "sensor"),
            "must be omitted: a PZEM meter delivers calibrated readings from its own CT",
        )
    addresses = list(source.pzem.addresses)
    device = ch.adc.device if ch.adc is not None else None
    if ch.adc is not None and (ch.adc.channel is not None or ch.adc.differential is not None):
        yield LocatedProblem((*base, "adc"), "a PZEM meter has no input numbers; give device only")
    if device is None and len(addresses) == 1:
        device = addresses[0]
    if device is None:
        yield LocatedProblem(
            (*base, "adc", "device"), "is required: several PZEM addresses in source.pzem"
        )
        return
    if device not in addresses:
        yield LocatedProblem(
            (*base, "adc", "device"), "is not in source.pzem.addresses", str(device)
        )
    if (device, kind) in used:
        yield LocatedProblem(
            (*base, "adc", "device"),
            f"meter {device} gives one {kind} reading, already used by {used[(device, kind)]}",
            str(device),
        )
    used.setdefault((device, kind), here)


def _load_control(
    lc: LoadControlConfig, circuits: Indexed, thresholds: Thresholds | None,
    unvalidated: frozenset[str],
) -> Iterator[LocatedProblem]:
    by_id = {c.id: c for _, c in circuits}
    for k, relay in enumerate(lc.relays):
        loc: Loc = ("load_control", "relays", k, "circuit")
        circuit = by_id.get(relay.circuit)
        if circuit is None and relay.circuit in unvalidated:
            continue  # that circuit has its own problems, reported already
        if circuit is None:
            yield LocatedProblem(
                loc, "no such circuit; have " + ", ".join(by_id), repr(relay.circuit)
            )
        elif circuit.critical:
            yield LocatedProblem(
                loc, "is a critical circuit and must never be shed; remove the relay or "
                "the critical flag", repr(relay.circuit),
            )
    if lc.enabled and lc.demand_limit_w is None and (
        thresholds is None or thresholds.demand_limit_w is None
    ):
        yield LocatedProblem(
            ("load_control", "demand_limit_w"),
            "is required when load control is enabled (or set thresholds.demand_limit_w)",
        )


# Pins of the buses the sources use (Raspberry Pi 40-pin header, BCM numbering).
_I2C1_PINS = {2: "I2C1 SDA", 3: "I2C1 SCL"}
_SPI_PINS = {
    0: {7: "SPI0 CE1", 8: "SPI0 CE0", 9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK"},
    1: {16: "SPI1 CE2", 17: "SPI1 CE1", 18: "SPI1 CE0", 19: "SPI1 MISO", 20: "SPI1 MOSI",
        21: "SPI1 SCLK"},
}
_UART_PINS = {14: "UART TXD", 15: "UART RXD"}


def bus_pins(source: SourceConfig) -> dict[int, str]:
    """GPIOs the configured source's bus occupies."""
    if source.type is SourceType.ADS1115:
        return dict(_I2C1_PINS)
    if source.type is SourceType.MCP3008 and source.mcp3008 is not None:
        return dict(_SPI_PINS[source.mcp3008.spi_bus])
    if source.type is SourceType.PZEM and source.pzem is not None and any(
        name in source.pzem.port for name in ("ttyAMA", "ttyS0", "serial0")
    ):
        return dict(_UART_PINS)
    return {}


def _gpio_pins(
    lc: LoadControlConfig, alerts: AlertsConfig, source: SourceConfig
) -> Iterator[LocatedProblem]:
    outputs: list[tuple[Loc, int]] = [
        (("load_control", "relays", k, "gpio_pin"), r.gpio_pin) for k, r in enumerate(lc.relays)
    ]
    local = alerts.local
    if local.buzzer_pin is not None:
        outputs.append((("alerts", "local", "buzzer_pin"), local.buzzer_pin))
    for name in ("warning", "critical"):
        pin = getattr(local.led_pins, name)
        if pin is not None:
            outputs.append((("alerts", "local", "led_pins", name), pin))
    taken = bus_pins(source)
    seen: dict[int, Loc] = {}
    for loc, pin in outputs:
        if pin in taken:
            yield LocatedProblem(
                loc, f"GPIO{pin} is {taken[pin]}, used by the {source.type} source", str(pin)
            )
        elif pin in seen:
            yield LocatedProblem(loc, f"GPIO{pin} is already used by {format_path(seen[pin])}",
                                 str(pin))
        seen.setdefault(pin, loc)
