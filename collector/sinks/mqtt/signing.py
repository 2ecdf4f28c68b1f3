"""Signed control commands: canonical JSON, HMAC-SHA256, and a command-line signer.

This module uses the Python standard library only, so the same file can be copied
next to another program (Home Assistant's ``/config``, a Node-RED exec node, a cron
job) and run there as ``python3 signing.py ...`` to produce a command the collector
accepts. docs/home-assistant.md shows how.

A command is a JSON object::

    {"v": 1, "site": "home", "cmd": "relay", "args": {"circuit": "ev_charger", "state": "off"},
     "ts": 1717171717, "nonce": "3f9c...", "sig": "<64 hex digits>"}

``sig`` is HMAC-SHA256 (RFC 2104, FIPS 198-1) keyed with the UTF-8 bytes of the
shared secret, over the *canonical* form of every other member: the object without
``sig``, serialised with keys sorted, no whitespace and non-ASCII escaped (so every
JSON library produces the same bytes). ``ts`` is whole seconds since the Unix epoch
(UTC) and ``nonce`` 16-64 characters of ``[A-Za-z0-9_-]``; together they stop a
recorded command from being replayed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
SIGNATURE_KEY = "sig"


def canonical_bytes(command: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: ``command`` without ``sig``, in canonical JSON."""
    unsigned = {k: v for k, v in command.items() if k != SIGNATURE_KEY}
    # allow_nan=False: NaN/Infinity are not JSON and other libraries would not agree.
    text = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def signature(command: Mapping[str, Any], secret: str) -> str:
    """HMAC-SHA256 of the canonical form of ``command`` as 64 lowercase hex digits."""
    if not secret:
        raise ValueError("secret: must be a non-empty string, got ''")
    return hmac.new(secret.encode("utf-8"), canonical_bytes(command), hashlib.sha256).hexdigest()


def signature_matches(command: Mapping[str, Any], secret: str) -> bool:
    """True when ``command["sig"]`` is the right signature (constant-time comparison)."""
    given = command.get(SIGNATURE_KEY)
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.lower().encode("ascii", "replace"),
                               signature(command, secret).encode("ascii"))


def new_nonce() -> str:
    """A fresh random nonce (128 bits, hex)."""
    return secrets.token_hex(16)


def sign_command(
    site: str,
    cmd: str,
    args: Mapping[str, Any],
    secret: str,
    *,
    ts: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """A complete signed command, ready to be published as JSON."""
    command: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "site": site,
        "cmd": cmd,
        "args": dict(args),
        "ts": int(time.time()) if ts is None else ts,
        "nonce": new_nonce() if nonce is None else nonce,
    }
    command[SIGNATURE_KEY] = signature(command, secret)
    return command


def _read_secret(path: str | None, inline: str | None) -> str:
    if path is not None:
        return Path(path).read_text(encoding="utf-8").strip()
    if inline is not None:
        return inline
    raise SystemExit("give the shared secret with --secret-file PATH (or --secret TEXT)")


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 signing.py --site home --secret-file F relay ev_charger off`` -> JSON."""
    parser = argparse.ArgumentParser(description="Sign a GridGuard MQTT control command.")
    parser.add_argument("--site", required=True, help="site id (config `site.id`)")
    parser.add_argument("--secret-file", help="file holding the shared secret")
    parser.add_argument("--secret", help="the shared secret itself (visible in `ps`!)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    relay = sub.add_parser("relay", help="switch the relay of a circuit")
    relay.add_argument("circuit")
    relay.add_argument("state", type=str.lower, choices=("on", "off"))
    ack = sub.add_parser("ack", help="acknowledge alerts")
    ack.add_argument("alert", nargs="?", default="all", help="alert id, default: all")
    ns = parser.parse_args(argv)
    secret = _read_secret(ns.secret_file, ns.secret)
    if ns.cmd == "relay":
        args: dict[str, Any] = {"circuit": ns.circuit, "state": ns.state}
    else:
        args = {"alert": ns.alert}
    print(json.dumps(sign_command(ns.site, ns.cmd, args, secret), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
