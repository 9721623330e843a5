#!/usr/bin/env bash
# Install the Debian packages the extra test tiers drive, when missing:
#   promtool (prometheus)  alert rules and dashboard queries (make check-observability, tests/unit/observability)
#   chromium               the web view's browser test (make test-ui)
#   iptables               traffic blocking in the cluster tier (make test-cluster)
# The Compose tier installs its Docker engine itself (tests/compose/run.sh).
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq
    # --no-install-recommends: only promtool is wanted from prometheus, not its
    # exporters and web assets.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "test tools are present: $(promtool --version 2>&1 | head -n 1)"
