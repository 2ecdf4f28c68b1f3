"""Remote control over MQTT: signed commands to switch relays and acknowledge alerts.

A command (format in :mod:`collector.sinks.mqtt.signing`) is carried out only when

1. it is well formed: a JSON object with exactly the members ``v, site, cmd, args,
   ts, nonce, sig`` of the right types, for this site;
2. its HMAC-SHA256 signature verifies with the shared secret (checked before anything
   in it is believed);
3. it is fresh: ``ts`` within ``max_age_s`` of our clock, and its nonce not seen
   before (a recorded command cannot be replayed);
4. it is safe: a critical circuit is never switched off (the same rule as the load
   shedding worker), a relay must exist for the circuit.

Everything else is rejected, logged and answered on the result topic; nothing here
raises into the caller. The relay itself is driven through :class:`RelayController`
(the rule worker's relays in production, :mod:`collector.worker.mqtt_control`; a
simulated one here), which may still refuse a command by its own rules (minimum on/off
times) by raising :class:`CommandRefusedError`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from collector.clock import Clock, SystemClock
from collector.model import NS_PER_S
from collector.sinks.mqtt.settings import SiteDescription
from collector.sinks.mqtt.signing import PROTOCOL_VERSION, signature_matches

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 2048
REPLAY_CACHE_MAX = 10_000
_MEMBERS = frozenset({"v", "site", "cmd", "args", "ts", "nonce", "sig"})
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SIG = re.compile(r"^[0-9a-f]{64}$")
_ALERT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# A flood of junk must not flood the log: the first rejections are all logged, then
# one in _LOG_EVERY (all are counted).
_LOG_FIRST = 20
_LOG_EVERY = 100


class CommandRefusedError(Exception):
    """Raised by a :class:`RelayController` or :class:`AlertAcknowledger` that will not
    carry out a (genuine) command; the message says why and is published as the reason."""


class RelayController(Protocol):
    """Drives the relays (contactors) of sheddable circuits."""

    def relay_circuits(self) -> frozenset[str]:
        """Circuits that have a relay."""
        ...

    def is_on(self, circuit: str) -> bool:
        """True when the circuit is switched on (relay in its 'supply on' state)."""
        ...

    def switch(self, circuit: str, on: bool) -> None:
        """Switch a circuit on or off; raises on a hardware failure, and
        :class:`CommandRefusedError` when its rules do not allow it now."""
        ...


class SimulatedRelayController:
    """In-memory relays for tests, demos and machines without GPIO."""

    def __init__(self, circuits: Iterable[str], *, initially_on: bool = True) -> None:
        self._lock = threading.Lock()
        self._state = {c: initially_on for c in circuits}
        self.history: list[tuple[str, bool]] = []

    def relay_circuits(self) -> frozenset[str]:
        return frozenset(self._state)

    def is_on(self, circuit: str) -> bool:
        with self._lock:
            return self._state[circuit]

    def switch(self, circuit: str, on: bool) -> None:
        with self._lock:
            if circuit not in self._state:
                raise KeyError(f"circuit: no relay on {circuit!r}; have {sorted(self._state)}")
            self._state[circuit] = on
            self.history.append((circuit, on))


class AlertAcknowledger(Protocol):
    """Receives acknowledgements (the rule worker stops escalating an alert)."""

    def acknowledge(self, alert: str, source: str) -> None:
        """Acknowledge alert ``alert`` (an id, or ``all``); raises
        :class:`CommandRefusedError` for an unknown id."""
        ...


class InMemoryAcknowledger:
    """Records acknowledgements (tests, and until the worker is wired in)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acknowledged: list[tuple[str, str]] = []

    def acknowledge(self, alert: str, source: str) -> None:
        with self._lock:
            self.acknowledged.append((alert, source))


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What became of one command; published on the result topic.

    ``verified``: the command passed the signature, site and freshness checks, so it
    is genuine (an authorised person asked), whether or not it was carried out; only
    such results are worth an audit record. ``state``: ``on``/``off`` of a verified
    relay command. Neither is published.
    """

    accepted: bool
    reason: str
    cmd: str | None = None
    nonce: str | None = None
    circuit: str | None = None
    verified: bool = False
    state: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reason": self.reason, "cmd": self.cmd,
                "nonce": self.nonce, "circuit": self.circuit}


class _RejectError(Exception):
    def __init__(self, reason: str, command: dict[str, Any] | None = None,
                 verified: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.command = command
        self.verified = verified


class ReplayGuard:
    """Nonces of accepted commands, kept while their timestamp is still acceptable."""

    def __init__(self, max_age_s: float, max_entries: int = REPLAY_CACHE_MAX) -> None:
        self._max_age_ns = round(max_age_s * NS_PER_S)
        self._max_entries = max_entries
        self._seen: OrderedDict[str, int] = OrderedDict()  # nonce -> ts [ns]

    def seen(self, nonce: str) -> bool:
        return nonce in self._seen

    def remember(self, nonce: str, ts_ns: int, now_ns: int) -> None:
        self._seen[nonce] = ts_ns
        self._prune(now_ns)

    def _prune(self, now_ns: int) -> None:
        # A nonce whose ts is too old is rejected by the freshness check anyway.
        horizon = now_ns - self._max_age_ns
        for nonce in [n for n, ts in self._seen.items() if ts < horizon]:
            del self._seen[nonce]
        while len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


class ControlHandler:
    """Checks and carries out commands; ``handle`` never raises."""

    def __init__(
        self,
        site: SiteDescription,
        secret: str,
        *,
        relays: RelayController | None = None,
        acknowledger: AlertAcknowledger | None = None,
        clock: Clock | None = None,
        max_age_s: float = 30.0,
    ) -> None:
        if not secret:
            raise ValueError("secret: must be a non-empty shared secret, got ''")
        if not max_age_s > 0:
            raise ValueError(f"max_age_s: must be > 0 s, got {max_age_s}")
        self._site = site
        self._secret = secret
        self._relays = relays
        self._ack = acknowledger
        self._clock: Clock = clock or SystemClock()
        self._max_age_ns = round(max_age_s * NS_PER_S)
        self._guard = ReplayGuard(max_age_s)
        self._critical = frozenset(c.id for c in site.circuits if c.critical)
        self._lock = threading.Lock()
        self.rejected = 0
        self.accepted = 0

    def handle(self, payload: bytes, source: str = "mqtt") -> CommandResult:
        """Verify and execute one command payload."""
        with self._lock:
            try:
                command = self._authenticate(payload)
                try:
                    result = self._execute(command, source)
                except _RejectError as exc:
                    exc.verified = True  # genuine and fresh, but not carried out
                    raise
            except _RejectError as exc:
                cmd = exc.command or {}
                raw_args = cmd.get("args")
                args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
                result = CommandResult(
                    False, exc.reason,
                    cmd=_str_or_none(cmd.get("cmd")), nonce=_str_or_none(cmd.get("nonce")),
                    circuit=_str_or_none(args.get("circuit")), verified=exc.verified,
                    state=_str_or_none(args.get("state")) if exc.verified else None,
                )
            except Exception as exc:  # a controller bug must not kill the MQTT thread
                log.exception("control command failed unexpectedly")
                result = CommandResult(False, f"internal error: {type(exc).__name__}")
            if result.accepted:
                self.accepted += 1
                log.info("control: %s accepted (%s)", result.cmd, result.reason)
            else:
                self.rejected += 1
                if self.rejected <= _LOG_FIRST or self.rejected % _LOG_EVERY == 0:
                    log.warning("control: command rejected: %s (%d rejected so far)",
                                result.reason, self.rejected)
            return result

    # -- checks -----------------------------------------------------------------

    def _authenticate(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_COMMAND_BYTES:
            raise _RejectError(f"malformed: {len(payload)} bytes, at most {MAX_COMMAND_BYTES}")
        try:
            command = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _RejectError(f"malformed: not UTF-8 JSON ({type(exc).__name__})") from None
        if not isinstance(command, dict):
            raise _RejectError(f"malformed: expected a JSON object, got {type(command).__name__}")
        if "sig" not in command:
            raise _RejectError("unsigned: no 'sig' member", command)
        members = set(command)
        if members != _MEMBERS:
            missing, extra = sorted(_MEMBERS - members), sorted(members - _MEMBERS)
            raise _RejectError(f"malformed: members missing {missing}, unexpected {extra}", command)
        v, ts = command["v"], command["ts"]
        if not _is_int(v) or v != PROTOCOL_VERSION:
            raise _RejectError(f"malformed: v must be {PROTOCOL_VERSION}, got {v!r}", command)
        if not _is_int(ts):
            raise _RejectError(f"malformed: ts must be whole seconds, got {ts!r}", command)
        nonce, sig = command["nonce"], command["sig"]
        if not isinstance(nonce, str) or not _NONCE.match(nonce):
            raise _RejectError("malformed: nonce must be 16-64 of [A-Za-z0-9_-]", command)
        if not isinstance(sig, str) or not _SIG.match(sig):
            raise _RejectError("malformed: sig must be 64 lowercase hex digits", command)
        if not isinstance(command["args"], dict) or not isinstance(command["cmd"], str):
            raise _RejectError("malformed: cmd must be a string and args an object", command)
        try:
            good = signature_matches(command, self._secret)
        except ValueError:  # allow_nan=False: a NaN cannot come from a signer
            good = False
        if not good:
            raise _RejectError("bad signature", command)
        # Only now is anything in the command believed.
        if command["site"] != self._site.id:
            raise _RejectError(
                f"wrong site {command['site']!r}, this is {self._site.id!r}", command)
        now_ns = self._clock.now_ns()
        age_ns = now_ns - ts * NS_PER_S
        if abs(age_ns) > self._max_age_ns:
            raise _RejectError(
                f"stale: ts is {age_ns / NS_PER_S:+.0f} s from our clock, at most "
                f"±{self._max_age_ns / NS_PER_S:g} s (check NTP on both ends)", command)
        if self._guard.seen(nonce):
            raise _RejectError("replayed: nonce already used", command)
        self._guard.remember(nonce, ts * NS_PER_S, now_ns)
        return command

    def _execute(self, command: dict[str, Any], source: str) -> CommandResult:
        cmd, args, nonce = command["cmd"], command["args"], command["nonce"]
        if cmd == "relay":
            if set(args) != {"circuit", "state"} or args["state"] not in ("on", "off"):
                raise _RejectError("malformed: relay args are {circuit, state: on|off}", command)
            circuit = args["circuit"]
            on = args["state"] == "on"
            if not isinstance(circuit, str):
                raise _RejectError("malformed: circuit must be a string", command)
            if not on and circuit in self._critical:
                raise _RejectError(
                    f"refused: {circuit!r} is a critical circuit and is never switched off",
                    command)
            if self._relays is None:
                raise _RejectError("refused: no relay controller on this collector", command)
            if circuit not in self._relays.relay_circuits():
                have = sorted(self._relays.relay_circuits())
                raise _RejectError(
                    f"refused: no relay on circuit {circuit!r}; have {have}", command)
            try:
                self._relays.switch(circuit, on)
            except CommandRefusedError as exc:
                raise _RejectError(f"refused: {exc}", command) from None
            except Exception as exc:
                log.exception("relay %s failed to switch %s", circuit, args["state"])
                raise _RejectError(f"relay failed: {type(exc).__name__}: {exc}", command) from None
            return CommandResult(True, f"{circuit} switched {args['state']}", "relay", nonce,
                                 circuit, verified=True, state=args["state"])
        if cmd == "ack":
            alert = args.get("alert")
            if set(args) != {"alert"} or not isinstance(alert, str) or not _ALERT.match(alert):
                raise _RejectError("malformed: ack args are {alert: id or 'all'}", command)
            if self._ack is None:
                raise _RejectError("refused: no alert handling on this collector", command)
            try:
                self._ack.acknowledge(alert, source)
            except CommandRefusedError as exc:
                raise _RejectError(f"refused: {exc}", command) from None
            return CommandResult(True, f"alert {alert} acknowledged", "ack", nonce,
                                 verified=True)
        raise _RejectError(f"malformed: unknown cmd {cmd!r}; expected relay or ack", command)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
