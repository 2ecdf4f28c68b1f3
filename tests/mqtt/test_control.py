"""Signed control commands: the HMAC against independent implementations, and every rule."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.clock import FakeClock
from collector.sinks.mqtt import signing
from collector.sinks.mqtt.control import (
    ControlHandler,
    InMemoryAcknowledger,
    ReplayGuard,
    SimulatedRelayController,
)
from tests.mqtt.helpers import SECRET, site

NOW_S = 1_700_000_000  # FakeClock's epoch


def handler(**kw: Any) -> tuple[ControlHandler, SimulatedRelayController, InMemoryAcknowledger]:
    relays = SimulatedRelayController(["kitchen", "fridge"])
    ack = InMemoryAcknowledger()
    clock = kw.pop("clock", FakeClock())
    h = ControlHandler(site(site_id="home"), SECRET, relays=relays, acknowledger=ack,
                       clock=clock, **kw)
    return h, relays, ack


def cmd(cmd: str = "relay", args: dict[str, Any] | None = None, *, ts: int = NOW_S,
        nonce: str = "0123456789abcdef0001", site_id: str = "home",
        secret: str = SECRET) -> dict[str, Any]:
    return signing.sign_command(site_id, cmd, args or {"circuit": "kitchen", "state": "off"},
                                secret, ts=ts, nonce=nonce)


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# -- the signature itself ------------------------------------------------------------


def test_hmac_primitive_matches_rfc_4231_test_case_2() -> None:
    # RFC 4231 section 4.3: key "Jefe", data "what do ya want for nothing?"
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest() \
        == expected


def test_canonical_form_is_sorted_compact_ascii_without_sig() -> None:
    c = {"sig": "x", "ts": 5, "args": {"state": "on", "circuit": "küche"}, "v": 1}
    assert signing.canonical_bytes(c) == \
        b'{"args":{"circuit":"k\\u00fcche","state":"on"},"ts":5,"v":1}'


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_signature_agrees_with_openssl(tmp_path: Path) -> None:
    # An independent HMAC-SHA256 implementation over the documented canonical bytes.
    c = cmd()
    data = tmp_path / "canonical.json"
    data.write_bytes(signing.canonical_bytes(c))
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET, str(data)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip().endswith(c["sig"])


def test_worked_example_in_the_docs_is_right() -> None:
    # docs/home-assistant.md shows this command and signature; keep them in step.
    doc = (Path(__file__).resolve().parents[2] / "docs" / "home-assistant.md").read_text()
    example = signing.sign_command(
        "home-berlin", "relay", {"circuit": "ev_charger", "state": "off"},
        "4f1d9a7c2e8b6035d1c9e7a4b2f80d6e", ts=1717171717, nonce="9b2e4c6a8d0f1e3a5c7b9d2f")
    assert example["sig"] in doc
    assert signing.canonical_bytes(example).decode() in doc


def test_command_line_signer_output_is_accepted(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    script = Path(signing.__file__)
    # run the module as the standalone file users copy to Home Assistant
    out = subprocess.run(
        [sys.executable, "-I", str(script), "--site", "home", "--secret-file", str(secret_file),
         "relay", "kitchen", "OFF"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout
    clock = FakeClock()
    clock.epoch_ns = json.loads(out)["ts"] * 1_000_000_000
    h, relays, _ = handler(clock=clock)
    result = h.handle(out.encode())
    assert result.accepted, result.reason
    assert relays.is_on("kitchen") is False


# -- the rules -------------------------------------------------------------------------


def test_good_command_switches_the_relay_and_ack_reaches_the_acknowledger() -> None:
    h, relays, ack = handler()
    r = h.handle(raw(cmd()))
    assert r.accepted
    assert r.circuit == "kitchen"
    assert relays.history == [("kitchen", False)]
    r = h.handle(raw(cmd(args={"circuit": "kitchen", "state": "on"}, nonce="n" * 16 + "0002")))
    assert r.accepted
    assert relays.is_on("kitchen")
    r = h.handle(raw(cmd("ack", {"alert": "all"}, nonce="n" * 16 + "0003")))
    assert r.accepted
    assert ack.acknowledged == [("all", "mqtt")]


def _rejected(h: ControlHandler, payload: bytes, relays: SimulatedRelayController,
              reason_part: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="collector.sinks.mqtt.control"):
        r = h.handle(payload)
    assert not r.accepted
    assert reason_part in r.reason, r.reason
    assert relays.history == [], "a rejected command must not touch a relay"
    assert any("rejected" in rec.getMessage() and reason_part in rec.getMessage()
               for rec in caplog.records), "rejections are logged"
    assert SECRET not in caplog.text


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: b"{not json", "malformed"),
    (lambda: b"\xff\xfe", "malformed"),
    (lambda: raw([1, 2, 3]), "malformed"),
    (lambda: raw({k: v for k, v in cmd().items() if k != "sig"}), "unsigned"),
    (lambda: raw({**cmd(), "sig": "0" * 64}), "bad signature"),
    (lambda: raw(cmd(secret="another-secret-of-enough-length")), "bad signature"),
    (lambda: raw({**cmd(), "args": {"circuit": "fridge", "state": "off"}}), "bad signature"),
    (lambda: raw({**cmd(), "extra": 1}), "malformed"),
    (lambda: raw(cmd(ts=NOW_S - 31)), "stale"),
    (lambda: raw(cmd(ts=NOW_S + 31)), "stale"),
    (lambda: raw(cmd(site_id="elsewhere")), "wrong site"),
    (lambda: raw(cmd(nonce="short")), "malformed"),
    (lambda: raw(cmd(args={"circuit": "kitchen", "state": "maybe"})), "malformed"),
    (lambda: raw(cmd(args={"circuit": "garage", "state": "off"})), "no relay"),
    (lambda: raw(cmd(args={"circuit": "fridge", "state": "off"})), "critical"),
    (lambda: raw(cmd("reboot", {})), "unknown cmd"),
    (lambda: b"x" * 5000, "malformed"),
])
def test_bad_commands_do_nothing_and_are_logged(make: Any, reason: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    h, relays, _ = handler()
    _rejected(h, make(), relays, reason, caplog)


def test_ts_as_float_or_bool_is_malformed(caplog: pytest.LogCaptureFixture) -> None:
    h, relays, _ = handler()
    for bad in (float(NOW_S), True):
        c = cmd()
        c["ts"] = bad
        c["sig"] = signing.signature(c, SECRET)  # correctly signed, still malformed
        _rejected(h, raw(c), relays, "malformed", caplog)


def test_replayed_command_is_refused() -> None:
    h, relays, _ = handler()
    payload = raw(cmd())
    assert h.handle(payload).accepted
    r = h.handle(payload)
    assert not r.accepted
    assert "replayed" in r.reason
    assert relays.history == [("kitchen", False)]


def test_edge_of_the_freshness_window_is_accepted() -> None:
    h, _, _ = handler(max_age_s=30)
    assert h.handle(raw(cmd(ts=NOW_S - 30))).accepted
    assert h.handle(raw(cmd(ts=NOW_S + 30, nonce="n" * 20))).accepted


def test_critical_circuit_may_be_switched_on() -> None:
    h, relays, _ = handler()
    r = h.handle(raw(cmd(args={"circuit": "fridge", "state": "on"})))
    assert r.accepted
    assert relays.history == [("fridge", True)]


def test_relay_hardware_failure_is_a_rejection_not_an_exception() -> None:
    class Broken(SimulatedRelayController):
        def switch(self, circuit: str, on: bool) -> None:
            raise OSError("GPIO busy")

    h = ControlHandler(site(site_id="home"), SECRET, relays=Broken(["kitchen"]),
                       clock=FakeClock())
    r = h.handle(raw(cmd()))
    assert not r.accepted
    assert "GPIO busy" in r.reason


def test_replay_guard_forgets_nonces_once_their_ts_is_too_old() -> None:
    g = ReplayGuard(max_age_s=30)
    g.remember("a" * 16, 0, now_ns=0)
    g.remember("b" * 16, 40 * 10**9, now_ns=40 * 10**9)
    assert not g.seen("a" * 16)
    assert g.seen("b" * 16)
    bounded = ReplayGuard(max_age_s=30, max_entries=3)
    for k in range(10):
        bounded.remember(f"{k:016d}", 0, now_ns=0)
    assert len(bounded) == 3
