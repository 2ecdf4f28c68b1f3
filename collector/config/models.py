"""GridGuardConfig: the whole configuration, one validated, frozen object."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from collector.config.alerts import AlertsConfig
from collector.config.analytics import AnalyticsConfig
from collector.config.base import StrictModel
from collector.config.channels import AnyChannel, ChannelsConfig
from collector.config.circuits import CircuitConfig
from collector.config.crosscheck import Sections, cross_check
from collector.config.errors import problems_error
from collector.config.events import EventsConfig
from collector.config.influx import InfluxConfig
from collector.config.load_control import LoadControlConfig
from collector.config.mqtt import MqttConfig
from collector.config.source import SourceConfig
from collector.config.system import SiteConfig, SystemConfig
from collector.config.tariff import TariffConfig
from collector.config.thresholds import Thresholds


class GridGuardConfig(StrictModel):
    """Everything the appliance knows. Only site, system, source, channels and circuits
    are required; every other section has defaults."""

    site: SiteConfig = Field(description="Where this appliance is.")
    system: SystemConfig = Field(description="The supply being measured.")
    source: SourceConfig = Field(description="Where samples come from.")
    channels: ChannelsConfig = Field(description="Sampled inputs.")
    circuits: tuple[CircuitConfig, ...] = Field(min_length=1, description="Monitored circuits.")
    thresholds: Thresholds = Field(
        default_factory=Thresholds, description="Event and alarm limits (reload live)."
    )
    events: EventsConfig = Field(default_factory=EventsConfig, description="Event handling.")
    tariff: TariffConfig | None = Field(
        default=None, description="Prices for cost reports; null = no costs."
    )
    influx: InfluxConfig = Field(default_factory=InfluxConfig, description="Storage.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT / Home Assistant.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Alert routing.")
    load_control: LoadControlConfig = Field(
        default_factory=LoadControlConfig, description="Load shedding."
    )
    analytics: AnalyticsConfig = Field(
        default_factory=AnalyticsConfig, description="Forecast and anomaly jobs."
    )

    @model_validator(mode="after")
    def _cross_sections(self) -> Self:
        problems = cross_check(self.sections())
        if problems:
            raise problems_error(problems)
        return self

    def sections(self) -> Sections:
        return Sections(
            system=self.system,
            source=self.source,
            channels=self.channels,
            circuits=self.circuits,
            thresholds=self.thresholds,
            load_control=self.load_control,
            alerts=self.alerts,
        )

    def circuit(self, circuit_id: str) -> CircuitConfig:
        for c in self.circuits:
            if c.id == circuit_id:
                return c
        raise KeyError(f"no circuit {circuit_id!r}; have {[c.id for c in self.circuits]}")

    def channel(self, channel_id: str) -> AnyChannel:
        ch = self.channels.by_id(channel_id)
        if ch is None:
            raise KeyError(f"no channel {channel_id!r}")
        return ch

    def voltage_channels_for(self, circuit_id: str) -> tuple[str, ...]:
        """Voltage channel ids of a circuit, in the order of its phases (default applied)."""
        c = self.circuit(circuit_id)
        if c.voltage_channels is not None:
            by_phase = {self.channel(v).phase: v for v in c.voltage_channels}
            return tuple(by_phase[p] for p in c.phases)
        # validation guaranteed exactly one voltage channel per phase of the circuit
        return tuple(
            next(ch.id for ch in self.channels.voltage if ch.phase is p) for p in c.phases
        )

    def circuit_of_channel(self, channel_id: str) -> str | None:
        """Circuit a current channel belongs to (ChannelInfo.circuit), if any."""
        return next((c.id for c in self.circuits if channel_id in c.current_channels), None)

    def frequency_band_hz(self) -> tuple[float, float]:
        return self.thresholds.frequency.band_for(self.system.nominal_frequency_hz)
