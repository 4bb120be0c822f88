#!/bin/sh
# Installs the Debian 12 packages qeval needs, only those missing.
# Needs root (or sudo) only when something is missing.
set -eu
PKGS="build-essential clang pkg-config libjansson-dev libcurl4-openssl-dev
libsqlite3-dev libyaml-dev libgmp-dev libmpfr-dev libpcre2-dev libssl-dev
libcmocka-dev libmicrohttpd-dev libclang-rt-14-dev valgrind curl wrk"
# Browser test of the HTML report (skipped with a message when absent).
[ "${QEVAL_NO_BROWSER:-0}" = 1 ] || PKGS="$PKGS chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "qeval: installing missing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
