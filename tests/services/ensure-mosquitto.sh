#!/usr/bin/env bash
# Make sure a `mosquitto` broker binary is available for the MQTT tests, installing
# Debian's `mosquitto` package when it is missing (root only). Safe to run repeatedly.
#
# The tests start their own broker on a free loopback port with a temporary config
# (tests/mosquitto_fixture.py); the system service the package ships is NOT wanted:
# it would listen on 1883 for anyone. Service starts are blocked while apt runs and
# the service is stopped and disabled afterwards.
#
# Prints the broker's path as the last line of stdout; messages go to stderr.
set -euo pipefail

find_broker() {
  if [ -n "${MOSQUITTO:-}" ] && [ -x "${MOSQUITTO}" ]; then echo "${MOSQUITTO}"; return 0; fi
  command -v mosquitto 2>/dev/null && return 0
  # Debian installs it in /usr/sbin, which is not on a normal user's PATH.
  [ -x /usr/sbin/mosquitto ] && { echo /usr/sbin/mosquitto; return 0; }
  return 1
}

if broker="$(find_broker)"; then
  echo "$broker"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "[mosquitto] not installed; install it with: sudo apt-get install mosquitto" >&2
  echo "[mosquitto] (or run this script as root, or set MOSQUITTO=/path/to/mosquitto)" >&2
  exit 1
fi

# invoke-rc.d asks /usr/sbin/policy-rc.d whether a maintainer script may start a
# service; exit status 101 means "no" (Debian policy, section 9.3.3 / invoke-rc.d(8)).
# Respect an existing policy file (docker images ship one), else add ours for the
# duration of the install.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, from gridguard tests/services/ensure-mosquitto.sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

echo "[mosquitto] installing Debian package mosquitto" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto >&2

# Belt and braces: whatever the init system, leave no system broker running or enabled.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now mosquitto.service >&2 2>/dev/null || true
else
  if [ -x /etc/init.d/mosquitto ]; then
    /etc/init.d/mosquitto stop >&2 2>/dev/null || true
  fi
  # Without a running systemd, `systemctl disable` still edits the unit links (and
  # the SysV rc links through systemd-sysv-install), so a later boot starts nothing.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable mosquitto.service >&2 2>/dev/null || true
  elif command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d mosquitto disable >&2 2>/dev/null || true
  fi
fi
# The package's config writes this pid file; stop exactly that process if it runs.
pidfile=/run/mosquitto/mosquitto.pid
if [ -s "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "[mosquitto] stopping the system broker (pid $pid) started by the package" >&2
    kill "$pid" 2>/dev/null || true
  fi
fi

if ! broker="$(find_broker)"; then
  echo "[mosquitto] installed the package but found no mosquitto binary" >&2
  exit 1
fi
echo "[mosquitto] $("$broker" -h 2>/dev/null | head -n 1 || true)" >&2
echo "$broker"
