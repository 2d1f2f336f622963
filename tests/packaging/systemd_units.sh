#!/usr/bin/env bash
# The systemd units the package installs (contrib/systemd/) as systemd itself reads them:
# `systemd-analyze verify` (the system unit, and the user unit as a user manager reads it) must
# pass and print nothing (an unknown key or a misspelt option is only a warning there), and
# `systemd-analyze security --offline` must rate the relay's sandbox at most 1.5: it rates 1.4
# with systemd 252 (Debian 12), and losing ProtectSystem=, ProtectHome= or PrivateDevices= puts it
# at 1.6 or more (the hardening options are what keep a compromised relay from the machine).
# ExecStart= names /usr/bin/qun, which verify requires to exist: the units are checked with the
# built binary's path put in its place. No systemd needs to run. Exits 77 (CTest: skipped) with
# a line saying why when systemd-analyze is missing.
# Usage: tests/packaging/systemd_units.sh SOURCE_DIR QUN_BINARY
set -euo pipefail
src=$1 qun=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd_units.sh: systemd-analyze is not installed (Debian package systemd): units not checked" >&2
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -m 0700 "$work/runtime"
for unit in qun.service qun-relay.service; do
  sed "s|/usr/bin/qun|$qun|g" "$src/contrib/systemd/$unit" >"$work/$unit"
done
fail=0
check() {
  local what=$1 out
  shift
  if ! out=$("$@" 2>&1) || [ -n "$out" ]; then
    echo "systemd_units.sh: $what:" >&2
    echo "$out" >&2
    fail=1
  fi
}
# --man=no: the units' Documentation= names man pages the package installs, not this machine.
check "systemd-analyze verify qun-relay.service" systemd-analyze verify --man=no "$work/qun-relay.service"
check "systemd-analyze --user verify qun.service" \
  env XDG_RUNTIME_DIR="$work/runtime" systemd-analyze --user verify --man=no "$work/qun.service"
level=$(systemd-analyze security --offline=yes "$work/qun-relay.service" 2>&1 |
        sed -n 's/.*Overall exposure level for qun-relay.service: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
  echo "systemd_units.sh: systemd-analyze security gave no exposure level for qun-relay.service" >&2
  fail=1
elif ! awk -v l="$level" 'BEGIN { exit !(l <= 1.5) }'; then
  echo "systemd_units.sh: qun-relay.service's exposure level is $level, above 1.5: a hardening" \
       "option was lost (systemd-analyze security --offline=yes lists them)" >&2
  fail=1
fi
exit "$fail"
