#!/usr/bin/env bash
# A Docker engine from Debian's packages, for `make test-compose` and CI.
#
#   scripts/docker-engine.sh install   # docker.io containerd runc iptables (bookworm) and the
#                                      # compose + buildx CLI plugins (from Debian 13's .debs)
#   scripts/docker-engine.sh start     # start dockerd unless an engine already answers;
#                                      # prints "started <pid>" or "already running"
#   scripts/docker-engine.sh stop      # stop the dockerd THIS script started (by its PID), only
#   scripts/docker-engine.sh status
#
# Every step is idempotent: what is installed is not installed again, a running
# engine (whoever started it) is used as it is and never stopped by `stop`.
#
# Compose v2 and buildx are not packaged for Debian 12. Debian 13 (trixie)
# packages them; only their two plugin binaries are unpacked into the CLI plugin
# folder. The trixie index lives in a temporary apt configuration of its own, so
# the system's sources, lists and packages stay bookworm's.
set -euo pipefail

STATE_DIR=${DOCKER_ENGINE_STATE_DIR:-/run/shop-docker-engine}
PID_FILE=$STATE_DIR/dockerd.pid
LOG_FILE=$STATE_DIR/dockerd.log
PLUGIN_DIR=${DOCKER_CLI_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
START_TIMEOUT=${DOCKER_ENGINE_START_TIMEOUT:-60}
STOP_TIMEOUT=${DOCKER_ENGINE_STOP_TIMEOUT:-60}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
log() { printf 'docker-engine: %s\n' "$*" >&2; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

plugin_works() {  # plugin_works compose|buildx
    timeout 20 docker "$1" version >/dev/null 2>&1
}

install_engine() {
    if command -v dockerd >/dev/null 2>&1 && command -v containerd >/dev/null 2>&1 \
        && command -v runc >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1; then
        log "engine packages already installed ($(dockerd --version))"
        return 0
    fi
    log "installing docker.io containerd runc iptables from Debian's packages"
    as_root timeout 600 apt-get update -qq
    # --no-install-recommends: no apparmor, git, needrestart... Services are not
    # started by the package scripts where policy-rc.d forbids it (containers, CI);
    # `start` below starts dockerd by itself either way.
    as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq --no-install-recommends docker.io containerd runc iptables
}

install_plugins() {
    local missing=()
    plugin_works compose || missing+=(docker-compose)
    plugin_works buildx || missing+=(docker-buildx)
    if [ ${#missing[@]} -eq 0 ]; then
        log "compose and buildx plugins already installed"
        return 0
    fi
    log "installing ${missing[*]} (plugin binaries only) from Debian 13 (trixie)"
    local tmp
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs" "$tmp/root"
    cat >"$tmp/trixie.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # A private apt configuration: its own sources, lists and cache, nothing of
    # the system's apt state is read or written.
    local apt_opts=(
        -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$tmp/sources.d"
        -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache=$tmp/cache"
        -o "Dir::State::status=/dev/null"
        -o "APT::Architecture=$(dpkg --print-architecture)"
        -o "Debug::NoLocking=1"
        -o "APT::Sandbox::User=root"
    )
    mkdir -p "$tmp/sources.d"
    mv "$tmp/trixie.sources" "$tmp/sources.d/trixie.sources"
    timeout 600 apt-get "${apt_opts[@]}" -qq update
    (cd "$tmp/debs" && timeout 600 apt-get "${apt_opts[@]}" -qq download "${missing[@]}")
    as_root mkdir -p "$PLUGIN_DIR"
    local deb name found
    for deb in "$tmp"/debs/*.deb; do
        dpkg-deb -x "$deb" "$tmp/root"
    done
    for name in "${missing[@]}"; do
        found=$(find "$tmp/root" -path '*/cli-plugins/*' -name "$name" -type f | head -n 1)
        if [ -z "$found" ]; then
            log "FATAL: no cli-plugins/$name in $(basename "$tmp"/debs/"$name"_*.deb)"
            return 1
        fi
        as_root install -m 0755 "$found" "$PLUGIN_DIR/$name"
        log "installed $PLUGIN_DIR/$name from $(basename "$tmp"/debs/"$name"_*.deb)"
    done
    plugin_works compose && plugin_works buildx
}

start_engine() {
    if engine_answers; then
        echo "already running"
        return 0
    fi
    command -v dockerd >/dev/null 2>&1 || { log "dockerd is not installed: run '$0 install'"; return 1; }
    as_root mkdir -p "$STATE_DIR"
    if [ -s "$PID_FILE" ] && [ "$(cat "/proc/$(cat "$PID_FILE")/comm" 2>/dev/null)" = dockerd ]; then
        log "dockerd $(cat "$PID_FILE") (started by this script) does not answer yet; waiting"
    else
        as_root rm -f "$PID_FILE"
        log "starting dockerd (log: $LOG_FILE)"
        # dockerd writes its own PID to our private pidfile: that file is the record
        # that this script started it, and `stop` stops that PID only. setsid: its own
        # session, so a Ctrl-C in the calling terminal does not reach it.
        as_root setsid dockerd --pidfile "$PID_FILE" >>"$LOG_FILE" 2>&1 </dev/null &
    fi
    local waited=0
    until engine_answers; do
        if [ "$waited" -ge 5 ] && ! { [ -s "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }; then
            log "FATAL: dockerd exited; last lines of $LOG_FILE:"
            tail -n 40 "$LOG_FILE" >&2 || true
            as_root rm -f "$PID_FILE"
            return 1
        fi
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            log "FATAL: dockerd does not answer after ${START_TIMEOUT}s; last lines of $LOG_FILE:"
            tail -n 40 "$LOG_FILE" >&2 || true
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "started $(cat "$PID_FILE")"
}

stop_engine() {
    if [ ! -s "$PID_FILE" ]; then
        log "no dockerd started by this script: nothing to stop"
        return 0
    fi
    local pid
    pid=$(cat "$PID_FILE")
    if ! kill -0 "$pid" 2>/dev/null || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
        log "dockerd $pid is gone already"
        as_root rm -f "$PID_FILE"
        return 0
    fi
    log "stopping dockerd $pid (started by this script)"
    as_root kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge "$STOP_TIMEOUT" ]; then
            log "dockerd $pid still runs after ${STOP_TIMEOUT}s: SIGKILL"
            as_root kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    as_root rm -f "$PID_FILE"
}

case "${1:-}" in
    install) install_engine && install_plugins ;;
    start) start_engine ;;
    stop) stop_engine ;;
    status)
        if engine_answers; then echo "engine: running"; else echo "engine: not running"; fi
        if [ -s "$PID_FILE" ]; then echo "started by this script: pid $(cat "$PID_FILE")"; fi
        plugin_works compose && docker compose version || echo "compose plugin: missing"
        plugin_works buildx && docker buildx version || echo "buildx plugin: missing"
        ;;
    *)
        echo "usage: $0 install|start|stop|status" >&2
        exit 2
        ;;
esac
