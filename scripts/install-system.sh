#!/usr/bin/env bash
# Install the Debian packages that the integration tests and reports need, idempotently.
#
#   scripts/install-system.sh            # as root (or a user with password-less sudo);
#                                        # silent when everything is already there
#
# Packages: prometheus, prometheus-alertmanager (rules and alert tests), postgresql (shared
# store), poppler-utils (PDF checks), fonts-wqy-zenhei (CJK font for the printable report),
# libreoffice-calc-nogui (headless Calc: the test that the XLSX prints converts it to PDF);
# and, only when `java` or `mvn` is not on PATH, openjdk-17-jre-headless and maven (Kafka).
# No init system runs on CI machines and the packages would otherwise start daemons listening on
# 0.0.0.0, so /usr/sbin/policy-rc.d is made to exit 101 ("do not start") before installing;
# the tests run the binaries themselves on 127.0.0.1.
#
# apt-get update runs only when a missing package has no install candidate, or when an install
# from the current lists fails (stale lists). apt's output is kept in a log and shown only on
# failure. Exit status: 0 when all packages are installed, non-zero with one line otherwise.
set -euo pipefail

PACKAGES=(
    prometheus prometheus-alertmanager postgresql poppler-utils fonts-wqy-zenhei
    libreoffice-calc-nogui
)
POLICY=/usr/sbin/policy-rc.d

die() { echo "install-system.sh: $*" >&2; exit 1; }

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ "$status" == installed ]] || echo "$pkg"
    done
    # The Kafka broker needs a JDK and Maven (scripts/kafka/kafka.sh); any provider will do.
    command -v java >/dev/null || echo openjdk-17-jre-headless
    command -v mvn >/dev/null || echo maven
}

policy_ok() {
    [[ -x "$POLICY" ]] || return 1
    local rc=0
    "$POLICY" >/dev/null 2>&1 || rc=$?
    [[ $rc -eq 101 ]]
}

mapfile -t missing < <(missing_packages)
if [[ ${#missing[@]} -eq 0 ]] && policy_ok; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    # CI runners often are a user with password-less sudo: use it rather than fail.
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n "$0" "$@"
    fi
    die "must run as root to install: ${missing[*]:-/usr/sbin/policy-rc.d} (try: sudo $0)"
fi
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu only"

if ! policy_ok; then
    # Keep a foreign policy script rather than destroying it.
    [[ -e "$POLICY" ]] && cp -p "$POLICY" "$POLICY.hotline-kpi.bak"
    printf '#!/bin/sh\n# Written by hotline-kpi scripts/install-system.sh: never start daemons from packages.\nexit 101\n' >"$POLICY"
    chmod 0755 "$POLICY"
fi

[[ ${#missing[@]} -eq 0 ]] && exit 0

log=$(mktemp "${TMPDIR:-/tmp}/hotline-kpi-apt.XXXXXX")
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive

apt_update() {
    apt-get update -q >>"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed (output above)"; }
}
apt_install() {
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1
}

updated=0
for pkg in "${missing[@]}"; do
    if ! apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1; then
        apt_update
        updated=1
        break
    fi
done

echo "install-system.sh: installing ${missing[*]}" >&2
if ! apt_install; then
    if [[ $updated -eq 0 ]]; then
        apt_update
        apt_install || { cat "$log" >&2; die "apt-get install failed (output above)"; }
    else
        cat "$log" >&2
        die "apt-get install failed (output above)"
    fi
fi

mapfile -t still < <(missing_packages)
[[ ${#still[@]} -eq 0 ]] || die "still missing after install: ${still[*]}"
