"""Typed, validated configuration of the appliance.

``load_config(path)`` reads a YAML file; ``parse_config(data)`` validates data
without I/O. Both raise :class:`ConfigError` listing every problem with its key path.
"""

from collector.config.errors import ConfigError, ConfigProblem, SecretNotResolvedError
from collector.config.load import (
    check_environment,
    load_config,
    load_config_with_warnings,
    parse_config,
)
from collector.config.models import GridGuardConfig
from collector.config.reload import (
    LIVE_RELOADABLE_SECTIONS,
    RESTART_REQUIRED_SECTIONS,
    changed_paths,
    diff_requires_restart,
)
from collector.config.secrets import PasswordSecret, Secret, TokenSecret

__all__ = [
    "LIVE_RELOADABLE_SECTIONS",
    "RESTART_REQUIRED_SECTIONS",
    "ConfigError",
    "ConfigProblem",
    "GridGuardConfig",
    "PasswordSecret",
    "Secret",
    "SecretNotResolvedError",
    "TokenSecret",
    "changed_paths",
    "check_environment",
    "diff_requires_restart",
    "load_config",
    "load_config_with_warnings",
    "parse_config",
]
