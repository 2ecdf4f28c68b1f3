"""Static check of every Flux text of the repository with the Flux language server.

Covered: every ``*.flux`` file (rollup task templates, the rule tasks of the example
config in influx/rules), every fenced ```` ```flux ```` block of the Markdown docs,
the rollup templates with their placeholders filled, and
the rule tasks generated for several configs (three-phase 50 Hz with time windows
and a site time zone, single-phase 60 Hz, basic-interval storage, an explicit
frequency band). The Grafana queries are checked in tests/grafana.

Generated tasks must be spotless: the only diagnostic allowed is the server's
warning about the ``task`` option every InfluxDB task has to declare.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from collector.config.models import GridGuardConfig
from collector.influx_admin.tasks import ROLLUPS, load_templates, render
from collector.rules.flux_rules import tasks_from_config
from tests.flux_lsp import ERROR, Diagnostic, FluxLsp, errors_of, require_flux_lsp
from tests.rules.helpers import BASE_CONFIG, make_config

REPO = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
TASK_OPTION_WARNING = "Avoid using `task` as an identifier name"


def _repo_files(pattern: str) -> list[Path]:
    return sorted(p for p in REPO.rglob(pattern)
                  if not SKIP_DIRS.intersection(p.relative_to(REPO).parts))


def flux_files() -> list[Path]:
    return _repo_files("*.flux")


_FENCE = re.compile(r"^```flux\n(.*?)^```", re.M | re.S)


def markdown_flux_blocks() -> dict[str, str]:
    """Fenced Flux blocks of the Markdown files, named ``path#n``."""
    out: dict[str, str] = {}
    for path in _repo_files("*.md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        for k, match in enumerate(_FENCE.finditer(text)):
            out[f"{path.relative_to(REPO).as_posix()}#{k}"] = match.group(1)
    return out


def _config_variants() -> dict[str, GridGuardConfig]:
    single: dict[str, Any] = copy.deepcopy(BASE_CONFIG)
    single["site"] = {"id": "single", "timezone": "America/Chicago"}
    single["system"] = {"type": "single_phase", "nominal_voltage_v": 120,
                        "nominal_frequency_hz": 60}
    single["channels"] = {"voltage": [{"id": "v1", "phase": "A"}],
                          "current": [{"id": "i1", "phase": "A"}, {"id": "i2", "phase": "A"}]}
    single["circuits"] = [
        {"id": "kitchen", "phases": ["A"], "current_channels": ["i1"], "breaker_rating_a": 20,
         "max_power_w": 1800},
        {"id": "sump", "phases": ["A"], "current_channels": ["i2"], "breaker_rating_a": 15,
         "critical": True, "expected_running": {"min_current_a": 0.2, "min_duration_s": 900,
                                                "windows": [{"start": "06:00", "end": "22:00"}]}},
    ]
    single["thresholds"] = {"frequency": {"band_hz": [59.3, 60.5]}}
    single["influx"] = {"write": {"interval": "basic"}}
    return {
        "test": make_config("lab", "raw", "events"),
        "example": _example(),
        "single-60hz": GridGuardConfig.model_validate(single),
    }


def _example() -> GridGuardConfig:
    from collector.config.load import load_config

    return load_config(REPO / "config" / "gridguard.example.yaml", resolve_secrets=False)


@pytest.fixture(scope="module")
def lsp() -> FluxLsp:
    return require_flux_lsp()


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return {f"{variant}/{t.rule.type.value}": t.flux
            for variant, cfg in _config_variants().items() for t in tasks_from_config(cfg)}


def test_there_are_flux_files_to_check() -> None:
    names = {p.relative_to(REPO).as_posix() for p in flux_files()}
    assert {"influx/tasks/rollup_1m.flux", "influx/tasks/rollup_1h.flux",
            "influx/rules/overcurrent.flux"} <= names


def test_every_flux_file_has_no_error(lsp: FluxLsp) -> None:
    docs = {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8") for p in flux_files()}
    docs.update(markdown_flux_blocks())
    templates = load_templates()
    for task in ROLLUPS:
        docs[f"rendered {task.key}"] = render(templates[task.key], {
            "task_name": f"gridguard-{task.key}", "raw_bucket": "raw",
            "rollup_1m_bucket": "rollup_1m", "rollup_1h_bucket": "rollup_1h"})
    server, diags = lsp.check(docs)
    assert server == "flux-lsp 0.8.40"
    assert not errors_of(diags), errors_of(diags)


def test_generated_tasks_have_no_diagnostics_but_the_task_option(
    lsp: FluxLsp, generated: dict[str, str]
) -> None:
    _, diags = lsp.check(generated)
    other: dict[str, list[str]] = {
        name: [str(d) for d in ds if TASK_OPTION_WARNING not in d.message]
        for name, ds in diags.items()
    }
    assert not {k: v for k, v in other.items() if v}
    # the variants exercise every code path: windows + time zone, basic interval
    assert "inWindow" in generated["test/undercurrent"]
    assert "inWindow" in generated["single-60hz/undercurrent"]
    assert '"basic"' in generated["single-60hz/overcurrent"]
    assert "single-60hz/voltage_unbalance" not in generated  # single-phase supply


def test_the_checker_reports_errors_in_a_broken_task(
    lsp: FluxLsp, generated: dict[str, str]
) -> None:
    # Evidence that the server really type-checks generated tasks: a misspelt
    # function, a wrong argument name and a type error must each be an error.
    good = generated["test/overcurrent"]
    broken = {
        "function": good.replace("stateDuration(", "stateDurations(", 1),
        "argument": good.replace('column: "d1"', 'colum: "d1"', 1),
        "type": good.replace("default: 0.0)", 'default: "none")', 1),
    }
    assert all(text != good for text in broken.values())
    _, diags = lsp.check(broken)
    for name in broken:
        errs = [d for d in diags[name] if d.severity == ERROR]
        assert errs, f"{name}: no error reported"
        assert all(isinstance(d, Diagnostic) for d in errs)
