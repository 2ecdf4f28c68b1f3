"""Every Flux text of the worker, statically checked with the Flux language server:
the metrics feed query (each interval choice) and the audit query in docs/alerting.md.
Both are also executed against the real influxd in test_influx_worker.py."""

from __future__ import annotations

import re
from pathlib import Path

from collector.model import NS_PER_S
from collector.worker.feed import FEED_FIELDS, feed_query
from tests.flux_lsp import errors_of, require_flux_lsp

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerting.md"
T0 = 1_700_000_000 * NS_PER_S


def doc_flux_blocks() -> list[str]:
    """The ```flux blocks of docs/alerting.md."""
    return re.findall(r"```flux\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_worker_flux_passes_the_language_server() -> None:
    docs = {
        f"feed-{'-'.join(sorted(iv))}": feed_query("raw", T0, T0 + 120 * NS_PER_S, iv,
                                                   FEED_FIELDS)
        for iv in (frozenset({"150c"}), frozenset({"180c"}), frozenset({"basic"}))
    }
    blocks = doc_flux_blocks()
    assert blocks, "docs/alerting.md should show how to query the audit log"
    docs.update({f"docs-alerting-{k}": text for k, text in enumerate(blocks)})
    _, diags = require_flux_lsp().check(docs)
    assert errors_of(diags) == {}
