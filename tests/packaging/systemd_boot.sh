#!/usr/bin/env bash
# The package under a real systemd: a fresh Debian 12 root (debootstrap), the .deb installed into
# it with apt (its dependencies from Debian), and systemd booted as PID 1 in new PID and mount
# namespaces (unshare) on that root, as a container manager would. Then, as a person and a relay
# operator would:
#  - the relay: `systemctl enable --now qun-relay` starts `qun node --relay` as the system user
#    qun on /var/lib/qun (its identity made by ExecStartPre), and `qun status` answers there;
#  - a person: a user with lingering enabled (so their user manager runs without a login) runs
#    `qun init`, then `systemctl --user enable --now qun`; their node (whose default port the
#    relay already holds, so it listens on a free one) answers `qun status`,
#    creates a group and a post, `systemctl --user restart qun` keeps the post, and
#    `systemctl --user stop qun` ends it cleanly (the unit's result is success, not a kill);
#  - the person's node links to the relay (`qun relay add` after the operator allowed their key)
#    and the relay serves the group.
# Nothing of this machine is touched: every mount lives in the namespaces, which end with their
# PID 1. The root is kept in DIR (default build/sysroot) to skip debootstrap next time.
# Exits 77 (CTest's skip) with a line saying why when it cannot run here: not root, no
# debootstrap or unshare, or Debian's mirror out of reach.
# Usage: tests/packaging/systemd_boot.sh DEB [DIR]
set -euo pipefail
deb=$(realpath "$1")
dir=$(realpath -m "${2:-build/sysroot}")
root=$dir/root
say() { echo "systemd_boot.sh: $*" >&2; }
skip() { say "$*; not checked"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "booting systemd in namespaces needs root"
command -v unshare >/dev/null || skip "unshare (util-linux) is missing"
command -v nsenter >/dev/null || skip "nsenter (util-linux) is missing"

# Bounds of the waits: a boot on a loaded 2-core machine takes a few seconds; a node's start
# under its unit, well under one.
boot_timeout_s=120
unit_timeout_s=60

mkdir -p "$dir"
if [ ! -x "$root/lib/systemd/systemd" ]; then
  command -v debootstrap >/dev/null || skip "debootstrap is missing (apt-get install debootstrap)"
  say "debootstrap bookworm into $root (log: $dir/debootstrap.log)"
  rm -rf "$root"
  if ! debootstrap --variant=minbase \
         --include=systemd,systemd-sysv,dbus,libpam-systemd,procps,iproute2 \
         bookworm "$root" http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1; then
    tail -5 "$dir/debootstrap.log" >&2
    rm -rf "$root"
    skip "debootstrap failed (is deb.debian.org reachable?)"
  fi
fi

# The package, installed with apt so that its dependencies come from Debian as on a user's
# machine. Reinstalled on every run: the root may hold an older build.
cp "$deb" "$root/tmp/qun.deb"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
chroot "$root" apt-get update -qq >"$dir/install.log" 2>&1 ||
  { tail -5 "$dir/install.log" >&2; skip "apt-get update failed in the root (is deb.debian.org reachable?)"; }
chroot "$root" apt-get install -y -qq --reinstall /tmp/qun.deb >>"$dir/install.log" 2>&1 ||
  { tail -20 "$dir/install.log" >&2; say "apt cannot install the package"; exit 1; }
chroot "$root" /bin/sh -c 'id ada >/dev/null 2>&1 || useradd -m -s /bin/bash ada'
# A kept root starts as a fresh one would: no relay or person's state from an earlier run.
rm -rf "$root/var/lib/qun" "$root/home/ada/.local/share/qun" "$root/home/ada/.config" \
  "$root/var/lib/systemd/linger/ada"
chroot "$root" systemctl disable qun-relay >/dev/null 2>&1 || true

# Boot: PID 1 of a new PID namespace, in a mount namespace of its own, chrooted into the root.
boot=$(mktemp)
# The root must be a mount point of its own (bind-mounted on itself, then moved to /): systemd
# sets up each unit's sandbox (ProtectSystem=, PrivateTmp=, ...) by remounting it, which fails
# with EINVAL on a plain chroot directory. Its own network namespace keeps the relay's 7420 and
# the node's ports off this machine's.
cat >"$boot" <<EOF
set -e
mount --make-rprivate /
ip link set lo up
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
cd "$root"
mount --move . /
exec chroot . /usr/bin/env container=qun-test /lib/systemd/systemd --system
EOF
unshare --pid --fork --mount --uts --ipc --net bash "$boot" >"$dir/boot.log" 2>&1 &
unshare_pid=$!
cleanup() {
  kill "$unshare_pid" 2>/dev/null || true
  # systemd as PID 1 ignores SIGTERM from outside: SIGKILL ends it, and the namespace with it.
  pkill -KILL -P "$unshare_pid" 2>/dev/null || true
  wait "$unshare_pid" 2>/dev/null || true
  rm -f "$boot"
}
trap cleanup EXIT

pid1=""
for _ in $(seq $((boot_timeout_s * 10))); do
  pid1=$(pgrep -P "$unshare_pid" -x systemd || true)
  [ -n "$pid1" ] && break
  sleep 0.1
done
[ -n "$pid1" ] || { cat "$dir/boot.log" >&2; say "systemd did not start"; exit 1; }
# Runs a command inside the booted system (its namespaces and root).
in_root() { nsenter --target "$pid1" --mount --pid --uts --ipc --net --root --wd=/ -- "$@"; }
state=""
for _ in $(seq $((boot_timeout_s * 10))); do
  state=$(in_root systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 0.1
done
case "$state" in
  running|degraded) say "systemd is up ($state)" ;;
  *) say "systemd did not finish booting in ${boot_timeout_s} s (state '$state')"; exit 1 ;;
esac

fail=0
problem() { say "$*"; fail=1; }
# Waits until COMMAND... succeeds, at most unit_timeout_s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq $((unit_timeout_s * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  problem "timed out after ${unit_timeout_s} s waiting until $what"
  return 1
}

# The relay, as its operator starts it.
in_root systemctl enable --now qun-relay >/dev/null 2>&1 || problem "systemctl enable --now qun-relay failed"
if wait_for "the relay answers qun status" in_root runuser -u qun -- qun --home /var/lib/qun status; then
  [ "$(in_root stat -c %U /var/lib/qun/identity.key)" = qun ] ||
    problem "the relay's identity is not owned by the user qun"
  relay_id=$(in_root runuser -u qun -- qun --home /var/lib/qun id --json |
    sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
fi

# A person's node, as its user starts it.
in_root loginctl enable-linger ada || problem "loginctl enable-linger ada failed"
as_ada() { in_root runuser -u ada -- env XDG_RUNTIME_DIR=/run/user/1000 "$@"; }
wait_for "ada's user manager runs" as_ada systemctl --user is-system-running
as_ada qun init --name ada >/dev/null 2>&1 || problem "qun init as ada failed"
as_ada systemctl --user enable --now qun >/dev/null 2>&1 || problem "systemctl --user enable --now qun failed"
if wait_for "ada's node answers qun status" as_ada qun status; then
  group=$(as_ada qun group create lobby) || problem "qun group create under the user unit failed"
  as_ada qun post lobby "hello from a service" >/dev/null || problem "qun post failed"
  as_ada systemctl --user restart qun || problem "systemctl --user restart qun failed"
  wait_for "ada's node answers again after a restart" as_ada qun status
  as_ada qun log lobby | grep -q "hello from a service" ||
    problem "the post is not in qun log after systemctl --user restart qun"
  # The operator allows ada's key; ada names the relay; the relay then serves the group.
  if [ -n "${relay_id:-}" ]; then
    ada_id=$(as_ada qun id --json | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
    in_root runuser -u qun -- qun --home /var/lib/qun relay approve "$ada_id" >/dev/null ||
      problem "qun relay approve on the relay failed"
    as_ada qun relay add lobby 127.0.0.1:7420 >/dev/null || problem "qun relay add failed"
    wait_for "the relay serves ada's group" \
      sh -c "nsenter --target $pid1 --mount --pid --uts --ipc --net --root --wd=/ -- runuser -u qun -- \
             qun --home /var/lib/qun status --json | grep -q '$group'"
  fi
  as_ada systemctl --user stop qun || problem "systemctl --user stop qun failed"
  result=$(as_ada systemctl --user show -p Result --value qun)
  [ "$result" = success ] || problem "qun.service stopped with result '$result', not success"
fi

in_root systemctl stop qun-relay || problem "systemctl stop qun-relay failed"
result=$(in_root systemctl show -p Result --value qun-relay)
[ "$result" = success ] || problem "qun-relay.service stopped with result '$result', not success"
if [ "$fail" -ne 0 ]; then
  say "the journal of the booted system:"
  in_root journalctl --no-pager -n 60 >&2 || true
  exit 1
fi
say "the relay and a user's node ran under systemd $(in_root systemctl --version | head -1 | cut -d' ' -f2)"
