#!/usr/bin/env bash
# Fetches one package of a chosen Debian suite and extracts it, without touching the system's
# apt sources or installed packages: a private apt config (its own sources list, lists and cache
# under the cache dir), `apt-get download`, `dpkg -x`. Test-only: used for other containerd
# versions, docker.io, the CRI proto, promtool; nothing of it ships.
#
#   dir=$(bash scripts/debian_pkg.sh trixie containerd=1.7.24~ds1-6+deb13u1)
#   "$dir/usr/bin/containerd" --version
#
# Prints the extracted tree's path on stdout (cached: a second call downloads nothing).
# CTRE_TEST_CACHE overrides the cache dir (default /opt/ctre-test-tools).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 SUITE PACKAGE[=VERSION]" >&2
  exit 2
fi
suite=$1
spec=$2
pkg=${spec%%=*}
cache=${CTRE_TEST_CACHE:-/opt/ctre-test-tools}
safe=$(printf '%s' "$spec" | tr -c 'A-Za-z0-9.+_-' '_')
dest="$cache/debs/$suite/$safe"
if [ -f "$dest/.complete" ]; then
  echo "$dest"
  exit 0
fi

apt_dir="$cache/apt/$suite"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/debs/$suite"
echo "deb http://deb.debian.org/debian $suite main" >"$apt_dir/sources.list"
apt=(apt-get -q
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
  -o "APT::Get::List-Cleanup=0")

# One fetch of a suite at a time (helpers and tests may ask concurrently).
exec 9>"$apt_dir/lock"
flock 9
if [ -f "$dest/.complete" ]; then
  echo "$dest"
  exit 0
fi
work=$(mktemp -d "$cache/debs/$suite/.fetch-XXXXXX")
trap 'rm -rf "$work"' EXIT
# The first try fails on a fresh cache (no package lists yet): expected, so its output is held
# back; a failure after the update is real and gets one line saying what and what to do.
download() { (cd "$work" && "${apt[@]}" download "$spec" >"$work/log" 2>&1); }
fail() {
  echo "debian_pkg.sh: cannot fetch $spec from Debian $suite: $1 ($(grep '^E:' "$work/log" | tail -n 1))" >&2
  exit 1
}
if ! download; then
  "${apt[@]}" update >"$work/log" 2>&1 || fail "apt-get update failed; check access to deb.debian.org"
  download || fail "not in the archive now? update the version in scripts/ (Debian moves them)"
fi
deb=$(ls "$work"/"${pkg}"_*.deb | head -n 1)
mkdir -p "$work/x"
dpkg -x "$deb" "$work/x"
rm -rf "$dest"
mv "$work/x" "$dest"
touch "$dest/.complete"
echo "$dest"
