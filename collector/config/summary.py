"""A human summary of a validated configuration (rich renderables, never secrets)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from collector.config.errors import ConfigProblem
from collector.config.models import GridGuardConfig
from collector.config.secrets import Secret
from collector.config.sensors import (
    Acs712Sensor,
    AnySensor,
    DirectSensor,
    DividerSensor,
    Sct013Sensor,
    Zmpt101bSensor,
)
from collector.config.source import SourceType


def describe_sensor(sensor: AnySensor | None) -> str:
    if sensor is None:
        return "-"
    if isinstance(sensor, Acs712Sensor):
        text = f"acs712 {sensor.variant.value}, {sensor.sensitivity_v_per_a:g} V/A"
    elif isinstance(sensor, Sct013Sensor):
        text = f"sct013-{sensor.variant}, {sensor.volts_per_amp:.4g} V/A"
        if sensor.burden_ohm is not None:
            text += f" ({sensor.burden_ohm:g} Ω/{sensor.turns})"
    elif isinstance(sensor, Zmpt101bSensor):
        text = f"zmpt101b, ×{sensor.ratio:g}"
    elif isinstance(sensor, DividerSensor):
        ratio = sensor.units_per_volt
        text = f"divider {sensor.r_top_ohm:g}/{sensor.r_bottom_ohm:g} Ω, ×{ratio:.4g}"
    else:
        assert isinstance(sensor, DirectSensor)
        text = f"direct ×{sensor.scale:g}"
    if sensor.zero_v:
        text += f", zero {sensor.zero_v:g} V"
    return text


def _secret(secret: Secret | None) -> str:
    return "-" if secret is None else secret.origin


def _source_text(cfg: GridGuardConfig) -> str:
    src = cfg.source
    if src.simulated is not None and src.type is SourceType.SIMULATED:
        s = src.simulated
        rate = "scenario rate" if s.sample_rate_hz is None else f"{s.sample_rate_hz:g} Hz"
        seed = "scenario seed" if s.seed is None else f"seed {s.seed}"
        return f"simulated: {s.scenario} ({rate}, {seed})"
    if src.replay is not None and src.type is SourceType.REPLAY:
        return f"replay: {src.replay.path}"
    if src.ads1115 is not None and src.type is SourceType.ADS1115:
        devs = ", ".join(
            f"0x{d.address:02X} ±{d.full_scale_v:g} V {d.data_rate_sps} SPS"
            for d in src.ads1115.devices
        )
        return f"ads1115 on i2c-{src.ads1115.bus}: {devs}"
    if src.mcp3008 is not None and src.type is SourceType.MCP3008:
        m = src.mcp3008
        return (f"mcp3008 on spidev{m.spi_bus}.{m.spi_device}, Vref {m.vref_v:g} V, "
                f"{m.sample_rate_hz:g} conversions/s")
    if src.pzem is not None:
        return f"pzem on {src.pzem.port}, addresses {list(src.pzem.addresses)}"
    return src.type.value


def _channels_table(cfg: GridGuardConfig) -> Table:
    t = Table(title="Channels", title_justify="left")
    for col in ("kind", "id", "phase", "adc", "sensor", "polarity", "calibration"):
        t.add_column(col, overflow="fold")
    for kind, _, ch in cfg.channels.all():
        t.add_row(
            kind, ch.id, ch.phase.value, ch.adc.describe() if ch.adc else "-",
            describe_sensor(ch.sensor), ch.polarity.value, ch.calibration_id or "-",
        )
    return t


def _circuits_table(cfg: GridGuardConfig) -> Table:
    t = Table(title="Circuits", title_justify="left")
    for col in ("id", "name", "kind", "phases", "current", "voltage", "breaker A", "max W",
                "priority", "critical"):
        t.add_column(col, overflow="fold")
    for c in cfg.circuits:
        t.add_row(
            c.id, c.display_name, c.kind.value, "".join(p.value for p in c.phases),
            ", ".join(c.current_channels), ", ".join(cfg.voltage_channels_for(c.id)),
            f"{c.breaker_rating_a:g}", "-" if c.max_power_w is None else f"{c.max_power_w:g}",
            c.priority.value, "yes" if c.critical else "no",
        )
    return t


def _thresholds_text(cfg: GridGuardConfig) -> Text:
    th = cfg.thresholds
    v, i = th.voltage, th.current
    lo, hi = cfg.frequency_band_hz()
    lines = [
        f"voltage: dip < {v.dip_threshold_pct:g} %, swell > {v.swell_threshold_pct:g} %, "
        f"interruption < {v.interruption_threshold_pct:g} %, hysteresis {v.hysteresis_pct:g} %",
        f"voltage bands: warning {v.undervoltage_warning_pct:g}..{v.overvoltage_warning_pct:g} %, "
        f"critical {v.undervoltage_critical_pct:g}..{v.overvoltage_critical_pct:g} %",
        f"current: warning {i.warning_pct_of_rating:g} %, overcurrent "
        f"{i.overcurrent_pct_of_rating:g} % for {i.overcurrent_min_duration_s:g} s, instant "
        f"{i.overcurrent_instant_pct:g} % of rating",
        f"ground fault: {th.ground_fault_threshold_a * 1000:g} mA for "
        f"{th.ground_fault_min_duration_s:g} s; open neutral: {th.open_neutral_divergence_pct:g} "
        f"% for {th.open_neutral_min_duration_s:g} s",
        f"frequency: {lo:g}..{hi:g} Hz ({th.frequency.averaging_s:g} s values)",
        f"THD voltage ≤ {th.thd_voltage_max_pct:g} %, THD current "
        + ("-" if th.thd_current_max_pct is None else f"≤ {th.thd_current_max_pct:g} %")
        + f", PF ≥ {th.power_factor_min:g}, unbalance ≤ {th.unbalance_max_pct:g} %",
        f"demand: {th.demand_window_min} min window, limit "
        + ("-" if th.demand_limit_w is None else f"{th.demand_limit_w:g} W"),
    ]
    return Text("Thresholds (reload live)\n", style="bold") + Text("\n".join(
        f"  {line}" for line in lines
    ))


def _integrations_table(cfg: GridGuardConfig) -> Table:
    t = Table(title="Integrations", title_justify="left")
    for col in ("integration", "enabled", "details"):
        t.add_column(col, overflow="fold")

    def row(name: str, enabled: bool, details: str) -> None:
        t.add_row(name, "yes" if enabled else "no", details if enabled else "")

    ix, mq, al = cfg.influx, cfg.mqtt, cfg.alerts
    row("influx", ix.enabled, f"{ix.url} org {ix.org}, token {_secret(ix.token)}, raw "
        f"interval {ix.write.interval.value}")
    row("mqtt", mq.enabled, f"{mq.host}:{mq.effective_port}{' tls' if mq.tls else ''}, "
        f"password {_secret(mq.password)}, prefix {mq.topic_prefix}")
    row("mqtt control", mq.enabled and mq.control.enabled,
        f"secret {_secret(mq.control.shared_secret)}")
    row("webhook", al.webhook.enabled, f"{al.webhook.bind_host}:{al.webhook.port}, token "
        f"{_secret(al.webhook.bearer_token)}")
    row("email", al.email.enabled, f"{al.email.smtp_host}:{al.email.smtp_port} "
        f"{al.email.security.value}, to {', '.join(al.email.to)}, password "
        f"{_secret(al.email.password)}")
    row("sms", al.sms.enabled, f"{al.sms.provider.value} to {', '.join(al.sms.to)}, token "
        f"{_secret(al.sms.auth_token)}")
    row("escalation", al.escalation.enabled,
        f"after {al.escalation.after_min:g} min to {', '.join(al.escalation.contacts)}")
    local = al.local
    row("local alarm", local.buzzer_pin is not None or local.led_pins.warning is not None
        or local.led_pins.critical is not None,
        f"buzzer {local.buzzer_pin}, LEDs {local.led_pins.warning}/{local.led_pins.critical}")
    lc = cfg.load_control
    limit = lc.demand_limit_w or cfg.thresholds.demand_limit_w
    relays = ", ".join(r.circuit for r in lc.relays)
    limit_text = "-" if limit is None else f"{limit:g} W"
    row("load control", lc.enabled, f"{len(lc.relays)} relays ({relays}), limit {limit_text}")
    wc = cfg.events.waveform_capture
    row("waveform capture", wc.enabled, f"{wc.format.value} to {wc.directory}, "
        f"{wc.pre_cycles}+{wc.post_cycles} cycles")
    row("arc detection", cfg.events.arc_detection.enabled, "advisory")
    row("tariff", cfg.tariff is not None, "" if cfg.tariff is None else
        f"{cfg.tariff.import_price_per_kwh:g}/{cfg.tariff.export_price_per_kwh:g} "
        f"{cfg.tariff.currency} per kWh, {len(cfg.tariff.time_of_use)} time-of-use periods")
    an = cfg.analytics
    row("forecast", an.forecast.enabled, f"{an.forecast.horizon_h} h horizon")
    row("anomaly", an.anomaly.enabled, f"{an.anomaly.detector.value}, contamination "
        f"{an.anomaly.contamination:g}")
    return t


def summary_renderables(
    cfg: GridGuardConfig, warnings: Sequence[ConfigProblem] = ()
) -> RenderableType:
    """Everything `gridguard config check` prints for a valid configuration."""
    head = Text()
    head.append("Site: ", style="bold").append(
        f"{cfg.site.id} ({cfg.site.display_name}), {cfg.site.timezone}\n"
    )
    head.append("System: ", style="bold").append(
        f"{cfg.system.type.value}, {cfg.system.nominal_voltage_v:g} V phase-to-neutral, "
        f"{cfg.system.nominal_frequency_hz} Hz\n"
    )
    head.append("Source: ", style="bold").append(_source_text(cfg))
    parts: list[RenderableType] = [
        head, _channels_table(cfg), _circuits_table(cfg), _thresholds_text(cfg),
        _integrations_table(cfg),
    ]
    if warnings:
        text = Text(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}:\n",
                    style="bold yellow")
        text.append("\n".join(f"  - {w}" for w in warnings))
        parts.append(text)
    return Group(*parts)


def summary_text(cfg: GridGuardConfig, warnings: Sequence[ConfigProblem] = (),
                 width: int = 160) -> str:
    """The summary as plain text (for logs and tests)."""
    buffer = io.StringIO()
    console = Console(width=width, file=buffer, color_system=None)
    console.print(summary_renderables(cfg, warnings))
    return buffer.getvalue()
