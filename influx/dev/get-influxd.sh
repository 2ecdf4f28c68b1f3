#!/usr/bin/env bash
# get-influxd.sh - print the absolute path of a usable influxd 2.7.x binary.
#
# The path is printed on the LAST line of stdout; everything else (progress,
# tool output) goes to stderr, so callers can do:
#
#     INFLUXD="$(influx/dev/get-influxd.sh | tail -n 1)"
#
# Resolution order:
#   1. $INFLUXD, if set (it must run and report 2.7.x, otherwise we fail);
#   2. `influxd` on PATH, if it reports 2.7.x;
#   3. the cached build ${GRIDGUARD_CACHE:-$HOME/.cache/gridguard}/influxd/v2.7.12/influxd;
#   4. otherwise build InfluxDB v2.7.12 from its Go module (and its Rust libflux)
#      into that cache. A cold build takes a while (see docs/influxd.md); later
#      runs are instant.
#
# Environment knobs:
#   INFLUXD            use this binary (must be 2.7.x)
#   GRIDGUARD_CACHE    cache root (default: $HOME/.cache/gridguard)
#   GET_INFLUXD_NICE   niceness used for the build (default: 10)
#
# See docs/influxd.md for the why and the troubleshooting notes.
set -euo pipefail

readonly INFLUX_VERSION="v2.7.12"
readonly INFLUX_MODULE="github.com/influxdata/influxdb/v2"
readonly FLUX_MODULE="github.com/influxdata/flux"
readonly MIN_GO_MINOR=23 # influxdb v2.7.12's go.mod says `go 1.23.0`

TMP_BIN=""
# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
    if [[ -n "$TMP_BIN" ]]; then
        rm -f -- "$TMP_BIN"
    fi
}
trap cleanup EXIT

log() {
    printf '[get-influxd] %s %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

# is_influxd_27 BIN: succeeds if BIN runs and `BIN version` reports 2.7.x.
is_influxd_27() {
    local bin="$1" out
    [[ -x "$bin" && ! -d "$bin" ]] || return 1
    out="$("$bin" version 2>/dev/null)" || return 1
    [[ "$out" =~ ^InfluxDB\ v?2\.7\.[0-9]+ ]]
}

abs_path() {
    local p="$1"
    if command -v realpath >/dev/null 2>&1; then
        realpath -- "$p"
    else
        (cd -- "$(dirname -- "$p")" && printf '%s/%s\n' "$(pwd -P)" "$(basename -- "$p")")
    fi
}

found() {
    local bin
    bin="$(abs_path "$1")"
    log "using $bin ($("$bin" version 2>/dev/null | head -n 1))"
    printf '%s\n' "$bin"
    exit 0
}

# --------------------------------------------------------------------------
# Build prerequisites
# --------------------------------------------------------------------------

# Debian packages the build needs beyond Go and Rust: a C toolchain for cgo
# (sqlite3, libflux glue), the real pkg-config (cgo resolves libflux through
# `#cgo pkg-config: flux`) and flock (util-linux). No clang/libclang: libflux
# has no bindgen step.
ensure_build_deps() {
    local missing=()
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    [[ -e /usr/include/stdio.h ]] || missing+=(libc6-dev)
    command -v flock >/dev/null 2>&1 || missing+=(util-linux)
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing missing build dependencies: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >&2
    else
        die "missing build dependencies: ${missing[*]} (install them, e.g. 'sudo apt-get install ${missing[*]}', or point \$INFLUXD at an existing influxd 2.7.x)"
    fi
}

find_cargo() {
    if command -v cargo >/dev/null 2>&1; then
        command -v cargo
    elif [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        printf '%s\n' "$HOME/.cargo/bin/cargo"
    else
        return 1
    fi
}

check_toolchains() {
    command -v go >/dev/null 2>&1 \
        || die "go not found on PATH (Go >= 1.${MIN_GO_MINOR} is needed to build influxd; or set \$INFLUXD)"
    local gov minor
    gov="$(GOTOOLCHAIN=local go env GOVERSION)"
    if [[ "$gov" =~ ^go1\.([0-9]+) ]]; then
        minor="${BASH_REMATCH[1]}"
        ((minor >= MIN_GO_MINOR)) || die "$gov is too old to build influxd $INFLUX_VERSION (need go1.${MIN_GO_MINOR}+)"
    else
        log "warning: cannot parse Go version '$gov', trying anyway"
    fi
    CARGO_BIN="$(find_cargo)" \
        || die "cargo not found (install Rust with rustup; libflux is written in Rust; or set \$INFLUXD)"
    log "toolchains: $gov, $("$CARGO_BIN" --version 2>/dev/null || echo 'cargo ?')"
}

# --------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------

build_influxd() {
    local cache_root="$1" vdir="$2" target="$3"
    local wrapper="$vdir/wrapper" pcdir="$vdir/pkgconfig"
    local src="$vdir/flux-src" libflux="$vdir/flux-src/libflux"
    local nice_level="${GET_INFLUXD_NICE:-10}"
    local t0 t1
    t0=$(date +%s)

    # Shared Go/Rust caches live under the cache root, not in the user's
    # defaults, so the build is self-contained and re-runs are fast.
    export GOMODCACHE="$cache_root/gomodcache"
    export GOCACHE="$cache_root/gocache"
    export CARGO_HOME="$cache_root/cargo-home"
    export GOTOOLCHAIN=local  # never let go download another toolchain
    export GOFLAGS="-buildvcs=false"
    export GO111MODULE=on
    export RUSTUP_TOOLCHAIN=stable # ignore flux's rust-toolchain.toml pin (1.72)
    export RUSTFLAGS="--cap-lints=warn" # flux's `strict` feature denies warnings
    # rustup's own data stays where it is even though CARGO_HOME moved.
    export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
    mkdir -p "$GOMODCACHE" "$GOCACHE" "$CARGO_HOME" "$wrapper" "$pcdir"

    # 1. A tiny wrapper module that requires influxdb. Building the upstream
    #    package from here sidesteps influxdb's own `replace` directives, which
    #    forbid `go install ...@version`.
    log "step 1/4: resolving Go modules for $INFLUX_MODULE $INFLUX_VERSION (~1.5 GB, ~2 min on a cold cache)..."
    if [[ ! -f "$wrapper/go.mod" ]] || ! grep -q "$INFLUX_MODULE $INFLUX_VERSION" "$wrapper/go.mod"; then
        cat >"$wrapper/go.mod" <<EOF
// Generated by GridGuard's influx/dev/get-influxd.sh: a throwaway module used
// only to build $INFLUX_MODULE/cmd/influxd at a pinned version.
module gridguard.invalid/influxd-build

go 1.${MIN_GO_MINOR}.0

require $INFLUX_MODULE $INFLUX_VERSION
EOF
        rm -f "$wrapper/go.sum"
    fi
    (
        cd "$wrapper"
        # `go get` of the main package records the requirements and go.sum
        # entries for its whole import graph (a plain `go mod tidy` would
        # drop the requirement, since nothing in this module imports it).
        go get "$INFLUX_MODULE/cmd/influxd@$INFLUX_VERSION" >&2
        go mod download "$INFLUX_MODULE" "$FLUX_MODULE" >&2
    )
    local flux_dir flux_version
    flux_dir="$(cd "$wrapper" && go list -m -f '{{.Dir}}' "$FLUX_MODULE")"
    flux_version="$(cd "$wrapper" && go list -m -f '{{.Version}}' "$FLUX_MODULE")"
    [[ -n "$flux_dir" && -d "$flux_dir/libflux" ]] || die "flux module source not found (got '$flux_dir')"
    log "flux $flux_version at $flux_dir"

    # 2. libflux (Rust) in a writable copy (the Go module cache is read-only).
    #    libflux/flux/build.rs compiles the Flux standard library from
    #    ../../stdlib, so the copy keeps the module's layout: flux-src/libflux
    #    next to flux-src/stdlib. A stamp file records which flux version the
    #    copy came from; the copy is made under a temp name and renamed.
    if [[ ! -f "$src/.gridguard-flux-version" ]] \
        || [[ "$(cat "$src/.gridguard-flux-version")" != "$flux_version" ]]; then
        log "step 2/4: copying libflux and the Flux stdlib sources ($flux_version)..."
        rm -rf "$src" "$src.tmp"
        mkdir -p "$src.tmp"
        cp -R "$flux_dir/libflux" "$flux_dir/stdlib" "$src.tmp/"
        chmod -R u+w "$src.tmp"
        printf '%s\n' "$flux_version" >"$src.tmp/.gridguard-flux-version"
        mv "$src.tmp" "$src"
    else
        log "step 2/4: libflux sources ($flux_version) already in place"
    fi

    log "step 3/4: building libflux (cargo, ~1-2 min cold on 2 cores)..."
    local lock_flag=()
    [[ -f "$libflux/Cargo.lock" ]] && lock_flag=(--locked)
    (
        cd "$libflux"
        nice -n "$nice_level" "$CARGO_BIN" build --release "${lock_flag[@]}" -p flux >&2
    )
    local libflux_a="$libflux/target/release/libflux.a"
    [[ -f "$libflux_a" ]] || die "cargo finished but $libflux_a is missing"

    # 3. flux.pc for cgo's `#cgo pkg-config: flux`. We link the static
    #    archive by absolute path so the binary has no runtime dependency on
    #    libflux.so (cargo builds both).
    cat >"$pcdir/flux.pc.tmp" <<EOF
# Generated by GridGuard's influx/dev/get-influxd.sh
Name: flux
Description: Flux language library (libflux, built locally)
Version: ${flux_version#v}
Cflags: -I$libflux/include
Libs: $libflux_a -ldl -lpthread -lm
EOF
    mv -f "$pcdir/flux.pc.tmp" "$pcdir/flux.pc"

    # 4. influxd itself. Built to a temp name, checked, then renamed, so an
    #    interrupted build never leaves a broken binary at the final path.
    log "step 4/4: building influxd (go build, ~4 min cold on 2 cores)..."
    local tmp_bin="$target.tmp.$$"
    TMP_BIN="$tmp_bin" # removed by the EXIT trap if we are interrupted
    local build_date
    build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    rm -f "$target".tmp.*
    (
        cd "$wrapper"
        PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" CGO_ENABLED=1 \
            nice -n "$nice_level" go build \
            -tags sqlite_foreign_keys,sqlite_json \
            -ldflags "-s -w -X main.version=$INFLUX_VERSION -X main.commit=gomodule -X main.date=$build_date" \
            -o "$tmp_bin" "$INFLUX_MODULE/cmd/influxd" >&2
    ) || {
        rm -f "$tmp_bin"
        die "go build of influxd failed (see output above)"
    }
    if ! is_influxd_27 "$tmp_bin"; then
        rm -f "$tmp_bin"
        die "the freshly built influxd does not report 2.7.x"
    fi
    mv -f "$tmp_bin" "$target"
    TMP_BIN=""
    t1=$(date +%s)
    log "built $target in $(((t1 - t0) / 60)) min $(((t1 - t0) % 60)) s"
}

main() {
    # 1. explicit override
    if [[ -n "${INFLUXD:-}" ]]; then
        is_influxd_27 "$INFLUXD" \
            || die "\$INFLUXD=$INFLUXD is not a runnable influxd 2.7.x ('$INFLUXD version' must print 'InfluxDB v2.7.x ...')"
        found "$INFLUXD"
    fi

    # 2. influxd on PATH
    local on_path
    if on_path="$(command -v influxd 2>/dev/null)"; then
        if is_influxd_27 "$on_path"; then
            found "$on_path"
        fi
        log "ignoring $on_path: not influxd 2.7.x"
    fi

    # 3. cache
    local cache_root="${GRIDGUARD_CACHE:-$HOME/.cache/gridguard}/influxd"
    local vdir="$cache_root/$INFLUX_VERSION"
    local target="$vdir/influxd"
    if is_influxd_27 "$target"; then
        found "$target"
    fi

    # 4. build, one builder at a time
    ensure_build_deps
    mkdir -p "$vdir"
    local lock="$cache_root/.build.lock"
    exec 9>"$lock"
    if ! flock -n 9; then
        log "another get-influxd.sh is building; waiting for its lock ($lock)..."
        flock 9
    fi
    # The other builder may have finished while we waited.
    if is_influxd_27 "$target"; then
        found "$target"
    fi
    check_toolchains
    log "no influxd 2.7.x found; building $INFLUX_VERSION into $vdir"
    build_influxd "$cache_root" "$vdir" "$target"
    found "$target"
}

# Everything is inside functions and main always ends in `exit` (found/die), so
# editing this file while a build runs cannot confuse the running bash.
main "$@"
