#!/usr/bin/env bash
# TEST STAND-INS for the third-party images the project uses, built from Debian 12
# packages, for machines that reach no image registry (CI here). Not for production:
# see README.md beside this file.
#
#   tests/compose/standins/build.sh            # every third-party image the project names
#   tests/compose/standins/build.sh --remove   # delete the stand-ins (keeps real images)
#
# Which images: the FROM lines of the Dockerfile that name no stage, and every image of
# docker-compose.yml that is not built from this repository (shop/*). Each is mapped by
# repository name to a folder here; an image without a stand-in is an error, so a new
# third-party image cannot slip past unnoticed.
#
# STANDINS=auto (default): an image already present that is not a stand-in is used as
#   it is; a missing one is pulled (bounded) and, if that fails, replaced by a stand-in.
# STANDINS=always: build stand-ins even where a real image is present or pullable.
#
# The Debian base (debootstrap --variant=minbase) is cached as a tarball in
# $STANDINS_CACHE (default tests/compose/.cache, gitignored): later runs skip
# debootstrap, and `docker import` too while its image is still in the engine.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
CACHE=${STANDINS_CACHE:-$REPO/tests/compose/.cache}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
MODE=${STANDINS:-auto}
BUILD_TIMEOUT=${STANDINS_BUILD_TIMEOUT:-900}
PULL_TIMEOUT=${STANDINS_PULL_TIMEOUT:-60}
LABEL=shop.test-standin

log() { printf 'standins: %s\n' "$*" >&2; }

# image name -> folder of its stand-in
standin_dir() {
    local repo=${1%:*}
    case "$repo" in
        python | docker.io/library/python) echo python ;;
        rabbitmq | docker.io/library/rabbitmq) echo rabbitmq ;;
        postgres | docker.io/library/postgres) echo postgres ;;
        axllent/mailpit | docker.io/axllent/mailpit) echo mailpit ;;
        prom/prometheus | docker.io/prom/prometheus) echo prometheus ;;
        *) return 1 ;;
    esac
}

third_party_images() {
    # Dockerfile: FROM <image> [AS name], minus references to earlier stages.
    awk 'toupper($1) == "FROM" {
            img = $2; if (img ~ /^--/) img = $3
            if (!(img in stages)) print img
            if (toupper($(NF-1)) == "AS") stages[$NF] = 1
         }' "$REPO/Dockerfile"
    # The services make test-compose runs: those outside profiles, and Prometheus
    # (profile `prometheus`). Grafana (profile `observability` only) has no stand-in.
    COMPOSE_PROFILES=prometheus docker compose -f "$REPO/docker-compose.yml" --env-file "$REPO/.env.example" \
        --project-directory "$REPO" config --images | grep -v '^shop/'
}

# debootstrap mounts /proc (and may mount /sys) inside the new root and, in a container,
# can leave it mounted: unmount whatever is under ROOT before anything deletes it, and
# delete with --one-file-system so a mount left over is never descended into.
remove_root() {  # remove_root ROOT
    local root=$1 mnt
    awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r \
        | while read -r mnt; do umount "$mnt" 2>/dev/null || umount -l "$mnt"; done
    rm -rf --one-file-system "$root"
}

is_standin() { [ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = true ]; }

base_image() {
    # debootstrap once, then keep the root as a tarball; import it once per engine.
    mkdir -p "$CACHE"
    local tarball=$CACHE/debian-$SUITE-minbase.tar
    if [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null 2>&1 || {
            log "installing debootstrap"
            DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends debootstrap >&2
        }
        local root started=$SECONDS
        root=$(mktemp -d "$CACHE/root.XXXXXX")
        log "debootstrap --variant=minbase $SUITE (cached afterwards in $tarball)"
        timeout "$BUILD_TIMEOUT" debootstrap --variant=minbase --include=ca-certificates,tini \
            "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
            tail -n 30 "$CACHE/debootstrap.log" >&2
            remove_root "$root"
            return 1
        }
        # What a Debian image is usually given: apt sources with updates and security,
        # no service starts from package scripts, no docs, no caches.
        cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
        printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
        chmod 0755 "$root/usr/sbin/policy-rc.d"
        cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
        printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
            >"$root/etc/apt/apt.conf.d/90-no-recommends"
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
            "$root"/var/log/* "$root"/tmp/*
        tar --numeric-owner --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* \
            -C "$root" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        remove_root "$root"
        log "debootstrap done in $((SECONDS - started))s"
    fi
    local tag
    tag=shop-standin/debian:$SUITE-$(sha256sum "$tarball" | cut -c1-12)
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        log "docker import $tarball as $tag"
        docker import --change "LABEL $LABEL=true" --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["bash"]' "$tarball" "$tag" >/dev/null
        # Bases of earlier tarballs are of no use any more.
        docker image ls shop-standin/debian --format '{{.Repository}}:{{.Tag}}' \
            | grep -vxF "$tag" | xargs -r docker image rm >/dev/null 2>&1 || true
    fi
    echo "$tag"
}

build_standin() {  # build_standin IMAGE DIR BASE
    local image=$1 dir=$2 base=$3
    log "building TEST STAND-IN $image from $dir/"
    timeout "$BUILD_TIMEOUT" docker build --progress=plain \
        --build-arg "BASE=$base" \
        --label "$LABEL=true" \
        --label "org.opencontainers.image.description=TEST STAND-IN for $image built from Debian $SUITE packages; not for production" \
        -t "$image" "$HERE/$dir"
}

remove_standins() {
    local image
    for image in $(docker image ls --filter "label=$LABEL=true" --format '{{.Repository}}:{{.Tag}}'); do
        [ "$image" = "<none>:<none>" ] && continue
        docker image rm "$image" >/dev/null && log "removed $image"
    done
}

main() {
    if [ "${1:-}" = --remove ]; then
        remove_standins
        return 0
    fi
    local images=() image dir missing=()
    mapfile -t images < <(third_party_images | sort -u)
    for image in "${images[@]}"; do
        standin_dir "$image" >/dev/null || missing+=("$image")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "FATAL: no stand-in for ${missing[*]}: add a folder under $HERE and map it in standin_dir"
        return 1
    fi

    local todo=()
    for image in "${images[@]}"; do
        if [ "$MODE" != always ]; then
            if docker image inspect "$image" >/dev/null 2>&1 && ! is_standin "$image"; then
                log "$image: real image present, used as it is"
                continue
            fi
            if ! docker image inspect "$image" >/dev/null 2>&1 \
                && timeout "$PULL_TIMEOUT" docker pull -q "$image" >/dev/null 2>&1; then
                log "$image: pulled the real image"
                continue
            fi
        fi
        todo+=("$image")
    done
    [ ${#todo[@]} -gt 0 ] || return 0

    local base
    base=$(base_image)
    # In parallel: the builds mostly wait for downloads and dpkg.
    local logs pids=() dirs=()
    logs=$(mktemp -d)
    for image in "${todo[@]}"; do
        dir=$(standin_dir "$image")
        build_standin "$image" "$dir" "$base" >"$logs/$dir.log" 2>&1 &
        pids+=($!)
        dirs+=("$dir")
    done
    local i failed=0 started=$SECONDS
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}"; then
            log "built ${todo[$i]} ($((SECONDS - started))s after the builds started)"
        else
            failed=1
            tail -n 60 "$logs/${dirs[$i]}.log" >&2
            log "FAILED: ${todo[$i]} (last lines of its build above)"
        fi
    done
    rm -rf "$logs"
    return $failed
}

main "$@"
