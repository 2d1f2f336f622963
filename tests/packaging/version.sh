#!/usr/bin/env bash
# `qun --version` prints the project's version (CMakeLists.txt), and the Debian package's newest
# changelog entry (debian/changelog) carries the same: a release that bumps one and not the other
# fails here, before a package says one version and its binary another.
# Usage: tests/packaging/version.sh SOURCE_DIR QUN_BINARY
set -euo pipefail
src=$1 qun=$2
printed=$("$qun" --version)
changelog=$(sed -n '1s/^qun (\([^)]*\)).*/\1/p' "$src/debian/changelog")
if [ "$printed" != "qun ${changelog%%-*}" ]; then
  echo "qun --version prints '$printed' but debian/changelog's newest entry is $changelog;" \
       "make project(VERSION) in CMakeLists.txt and debian/changelog agree" >&2
  exit 1
fi
