"""Connection settings of the CLI commands: options, then environment, then the config file.

The config hookup is isolated in :func:`_from_config` (the config package is loaded
lazily, so these commands work without a config file).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.influx_admin.api import InfluxApi
from collector.sinks.influx.transport import is_v1_credential

ENV_URL = "GRIDGUARD_INFLUX_URL"
ENV_TOKEN = "GRIDGUARD_INFLUX_TOKEN"
ENV_ORG = "GRIDGUARD_INFLUX_ORG"
DEFAULT_URL = "http://localhost:8086"
DEFAULT_ORG = "gridguard"
SPOOL_FILE = "influx-spool.sqlite"
DEFAULT_SPOOL_DIR = Path("/var/lib/gridguard/spool")

BUCKET_ROLES = ("raw", "rollup_1m", "rollup_1h", "events", "analytics")


@dataclass(frozen=True, slots=True)
class Connection:
    """Where to reach InfluxDB and which buckets are ours."""

    url: str
    org: str
    token: str
    buckets: dict[str, str] = field(default_factory=lambda: {r: r for r in BUCKET_ROLES})
    retention_days: dict[str, int | None] = field(default_factory=dict)
    spool_path: Path = DEFAULT_SPOOL_DIR / SPOOL_FILE

    def api(self) -> InfluxApi:
        return InfluxApi(self.url, self.token, self.org)


def _secret(secret: Any, env: Mapping[str, str], base: Path) -> str | None:
    # Only the influx token is resolved here, not every secret of the file: reading
    # data back (export, status) must work on a machine without the SMTP password.
    if secret is None:
        return None
    if secret.value is not None:
        return str(secret.value.get_secret_value())
    if secret.env is not None:
        return env.get(str(secret.env))
    path = Path(secret.file)
    return (path if path.is_absolute() else base / path).read_text(encoding="utf-8").strip()


def _from_config(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The ``influx`` section of a GridGuard config file as plain values."""
    loader = importlib.import_module("collector.config.load")
    cfg: Any = loader.load_config(path, resolve_secrets=False)
    influx: Any = cfg.influx
    out: dict[str, Any] = {"url": str(influx.url).rstrip("/"), "org": influx.org}
    token = _secret(influx.token, env, path.parent)
    if token:
        out["token"] = token
    out["buckets"] = {r: getattr(influx.buckets, r) for r in BUCKET_ROLES}
    out["retention_days"] = {r: getattr(influx.retention, f"{r}_days") for r in BUCKET_ROLES}
    out["spool_path"] = Path(influx.spool.path) / SPOOL_FILE
    return out


def resolve(
    url: str | None = None,
    token: str | None = None,
    org: str | None = None,
    config: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    token_required: bool = True,
) -> Connection:
    """Options win over environment variables, which win over the config file."""
    env = os.environ if environ is None else environ
    from_cfg = _from_config(config, env) if config is not None else {}
    url_ = url or env.get(ENV_URL) or from_cfg.get("url") or DEFAULT_URL
    org_ = org or env.get(ENV_ORG) or from_cfg.get("org") or DEFAULT_ORG
    token_ = token or env.get(ENV_TOKEN) or from_cfg.get("token") or ""
    if token_required and not token_:
        raise ValueError(
            f"token: none given; pass --token, set {ENV_TOKEN}, or give --config with "
            "influx.token"
        )
    if is_v1_credential(token_):
        raise ValueError(
            "token: this is the collector's write-only v1 credential (user:password), "
            "which cannot use InfluxDB's v2 API; pass --token or set "
            f"{ENV_TOKEN} to a token that can (the operator token for `influx setup`, "
            "grafana.token from its --token-dir for reading)"
        )
    conn = Connection(url=url_, org=org_, token=token_)
    if "buckets" in from_cfg:
        conn = Connection(
            url=url_, org=org_, token=token_, buckets=from_cfg["buckets"],
            retention_days=from_cfg["retention_days"], spool_path=from_cfg["spool_path"],
        )
    return conn
