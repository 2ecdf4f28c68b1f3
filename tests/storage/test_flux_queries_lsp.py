"""The Flux that export, status, stats and backfill build in Python, statically checked
with the Flux language server (each variant of its options). The same queries run
against the real influxd in test_influx_export.py and test_influx_setup.py."""

from __future__ import annotations

from collector.influx_admin.queries import export_query, latest_query, stats_query
from collector.model import NS_PER_S
from tests.flux_lsp import errors_of, require_flux_lsp

T0 = 1_700_000_000 * NS_PER_S
T1 = T0 + 3600 * NS_PER_S


def test_export_status_and_stats_queries_pass_the_language_server() -> None:
    docs = {
        "export-raw": export_query("raw", T0, T1),
        "export-filtered": export_query("raw", T0, T1, circuits=["kitchen", "solar"],
                                        fields=["power_active_w", "voltage_rms_v"]),
        "export-1m": export_query("rollup_1m", T0, T1, every="1m"),
        "export-1d": export_query("rollup_1h", T0, T1, every="1d", fields=["energy_import_wh"]),
        "status": latest_query("raw", "1h", ["voltage_rms_v", "power_active_w"]),
        "stats": stats_query("raw", T0, T1, ["150c", "180c"]),
        "stats-all": stats_query("raw", T0, T1, None),
    }
    _, diags = require_flux_lsp().check(docs)
    assert errors_of(diags) == {}
    # the checker does see errors in this kind of text (a misspelt function)
    _, bad = require_flux_lsp().check({"bad": docs["status"].replace("last()", "lsat()")})
    assert errors_of(bad)
