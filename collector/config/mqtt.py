"""`mqtt`: publishing to a broker, Home Assistant discovery, remote control."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from collector.config.base import StrictModel
from collector.config.errors import LocatedProblem, problems_error
from collector.config.secrets import PasswordSecret, TokenSecret


def _check_topic(value: str) -> str:
    # A prefix is a plain topic: MQTT wildcards would make every publish invalid.
    if not re.match(r"^[^/#+\s][^#+\s]*$", value) or value.endswith("/"):
        raise ValueError("must be a topic prefix without wildcards (+ #), spaces or "
                         "leading/trailing '/'")
    return value


TopicPrefix = Annotated[str, AfterValidator(_check_topic)]


class MqttTls(StrictModel):
    ca_file: Path | None = Field(
        default=None, description="CA certificate of the broker (default: system CAs)."
    )
    certfile: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    keyfile: Path | None = Field(default=None, description="Client key (mutual TLS).")
    verify: bool = Field(default=True, description="Verify the broker certificate and name.")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.certfile is None) != (self.keyfile is None):
            raise problems_error([LocatedProblem(
                ("certfile" if self.certfile is None else "keyfile",),
                "certfile and keyfile go together",
            )])
        return self


class MqttControl(StrictModel):
    enabled: bool = Field(
        default=False, description="Accept commands (relays, acknowledgements) over MQTT."
    )
    shared_secret: TokenSecret | None = Field(
        default=None, description="HMAC key commands must be signed with; required if enabled."
    )

    @model_validator(mode="after")
    def _secret(self) -> Self:
        if self.enabled and self.shared_secret is None:
            raise problems_error([LocatedProblem(
                ("shared_secret",), "is required when control is enabled"
            )])
        return self


class MqttConfig(StrictModel):
    enabled: bool = Field(default=False, description="Publish to an MQTT broker.")
    host: str = Field(default="localhost", min_length=1, description="Broker host name.")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Broker port; default 1883, 8883 with TLS."
    )
    tls: MqttTls | None = Field(default=None, description="TLS settings; null = plain TCP.")
    username: str | None = Field(default=None, min_length=1, description="Broker user.")
    password: PasswordSecret | None = Field(default=None, description="Broker password.")
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Client id (default: gridguard-<site id>).",
    )
    topic_prefix: TopicPrefix = Field(default="gridguard", description="Topic prefix.")
    discovery_prefix: TopicPrefix = Field(
        default="homeassistant", description="Home Assistant discovery prefix."
    )
    qos: Literal[0, 1, 2] = Field(default=1, description="MQTT QoS of publishes.")
    publish_interval_s: float = Field(
        default=10.0, ge=1, le=3600, description="Interval of state publishes [s]."
    )
    control: MqttControl = Field(default_factory=MqttControl, description="Remote control.")

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 8883 if self.tls is not None else 1883

    @model_validator(mode="after")
    def _password_needs_user(self) -> Self:
        if self.password is not None and self.username is None:
            raise problems_error([LocatedProblem(
                ("username",), "is required when a password is given"
            )])
        return self
