"""Static checks of Flux text with the Flux language server (``@influxdata/flux-lsp-node``).

The server is the WASM build of influxdata/flux-lsp packaged for Node. It parses
and type-checks Flux against the standard library it bundles: unknown functions
and packages, wrong or missing argument names, type errors (``1 + "a"``, a float
default for a string dict) are errors (severity 1); style remarks such as "avoid
using `task` as an identifier" are warnings (severity 2) and are not failures.

``tests/services/ensure-flux-lsp.sh`` installs the pinned package once into
``${GRIDGUARD_CACHE:-~/.cache/gridguard}/flux-lsp/``; ``tests/services/flux-lsp-check.js``
feeds documents through it. Without Node/npm the checks skip with a loud reason,
or fail when ``CI`` or ``GRIDGUARD_REQUIRE_FLUX_LSP=1`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENSURE_SCRIPT = REPO / "tests" / "services" / "ensure-flux-lsp.sh"
CHECK_SCRIPT = REPO / "tests" / "services" / "flux-lsp-check.js"
ERROR = 1  # LSP DiagnosticSeverity.Error
MISSING_MARK = "Flux language server unavailable"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: int
    message: str
    line: int  # 0-based
    character: int

    def __str__(self) -> str:
        kind = "error" if self.severity == ERROR else f"severity {self.severity}"
        return f"{self.line + 1}:{self.character + 1}: {kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class FluxLsp:
    """The installed language server package and the node binary that runs it."""

    package_dir: Path
    node: str

    def check(self, docs: Mapping[str, str]) -> tuple[str, dict[str, list[Diagnostic]]]:
        """(server name and version, diagnostics per document name)."""
        payload = json.dumps([{"name": n, "text": t} for n, t in docs.items()])
        proc = subprocess.run(
            [self.node, str(CHECK_SCRIPT), str(self.package_dir)], input=payload,
            capture_output=True, text=True, timeout=300, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"flux-lsp-check.js exited {proc.returncode}: {proc.stderr[-2000:]}")
        body = json.loads(proc.stdout)
        out = {
            name: [Diagnostic(int(d["severity"]), str(d["message"]), int(d["line"]),
                              int(d["character"])) for d in diags]
            for name, diags in body["results"].items()
        }
        missing = set(docs) - set(out)
        if missing:
            raise RuntimeError(f"no diagnostics reported for {sorted(missing)}")
        return str(body["server"]), out


def errors_of(diags: Mapping[str, list[Diagnostic]]) -> dict[str, list[str]]:
    """Error diagnostics (severity 1) per document, as text; documents without none."""
    return {name: [str(d) for d in ds if d.severity == ERROR]
            for name, ds in diags.items() if any(d.severity == ERROR for d in ds)}


def find_flux_lsp() -> tuple[FluxLsp | None, str]:
    """Install (once) and locate the server; (None, reason) when that is impossible."""
    node = shutil.which("node")
    if node is None:
        return None, "node is not installed (Node.js >= 18 runs the Flux language server)"
    try:
        proc = subprocess.run(["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True,
                              timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{ENSURE_SCRIPT.name} could not run: {exc}"
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return None, f"{ENSURE_SCRIPT.name} failed ({proc.returncode}): {proc.stderr[-800:]}"
    package = Path(lines[-1])
    if not (package / "package.json").is_file():
        return None, f"{ENSURE_SCRIPT.name} printed {package}, which holds no package.json"
    return FluxLsp(package, node), ""


def require_flux_lsp() -> FluxLsp:
    """The server, or skip (fail under CI / GRIDGUARD_REQUIRE_FLUX_LSP=1) with the reason."""
    lsp, reason = find_flux_lsp()
    if lsp is not None:
        return lsp
    text = f"{MISSING_MARK}: {reason}"
    if os.environ.get("CI") or os.environ.get("GRIDGUARD_REQUIRE_FLUX_LSP") == "1":
        pytest.fail(text, pytrace=False)
    pytest.skip(f"{text}. !!! Flux static checks NOT RUN !!!")
    raise AssertionError("unreachable")
