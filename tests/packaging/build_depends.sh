#!/usr/bin/env bash
# Every package scripts/setup installs to build and test qun is a Build-Depends of the Debian
# package (debian/control; one only the tests use with <!nocheck>). A machine that ran
# scripts/setup has them all, so a missing Build-Depends would only show on a clean builder:
# this check (CTest "packaging: ...", and scripts/package) shows it at once. The compiler and
# make come with build-essential, which every Debian builder has.
# Usage: tests/packaging/build_depends.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
setup_packages=$(sed -n '/^packages=(/,/^)/p' scripts/setup | sed '1d;$d;s/#.*//' |
                 tr -s ' \t' '\n' | grep -v '^$' || true)
build_depends=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' debian/control)
if [ -z "$setup_packages" ] || [ -z "$build_depends" ]; then
  echo "build_depends.sh: cannot read the package list of scripts/setup or debian/control" >&2
  exit 1
fi
missing=0
for p in $setup_packages; do
  case $p in g++|make) continue ;; esac
  if ! grep -Eq "(^|[ ,])$p([ ,(<]|$)" <<<"$build_depends"; then
    echo "scripts/setup installs $p but debian/control's Build-Depends lacks it; add" \
         "'$p,' there ('$p <!nocheck>,' if only the tests use it)" >&2
    missing=1
  fi
done
exit "$missing"
