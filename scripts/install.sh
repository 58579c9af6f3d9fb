#!/usr/bin/env bash
# Installs a built ctre binary and its systemd units onto a node, or removes them.
#
#   scripts/install.sh [BINARY] [--enable]     # default BINARY: dist/ctre-<arch>-linux
#   scripts/install.sh --uninstall [--purge]   # --purge also removes /etc/default/ctre and the usage DB
#
# DESTDIR is honoured (packaging, tests): nothing outside it is touched, and systemctl is not
# called. --enable (without DESTDIR) runs systemctl daemon-reload and enables the recorder and
# the daily prune timer.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DESTDIR=${DESTDIR:-}
BIN="$DESTDIR/usr/local/bin/ctre"
UNITS="$DESTDIR/etc/systemd/system"
DEFAULTS="$DESTDIR/etc/default/ctre"
SPOOL="$DESTDIR/var/spool/ctre"
UNIT_FILES=(ctre-record.service ctre-prune.service ctre-prune.timer)

die() { echo "install.sh: $*" >&2; exit 1; }
systemd_live() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

mode=install binary="" enable=0 purge=0
for arg in "$@"; do
  case "$arg" in
    --uninstall) mode=uninstall ;;
    --purge) purge=1 ;;
    --enable) enable=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) die "unknown option \"$arg\"" ;;
    *) binary=$arg ;;
  esac
done

if [ "$mode" = uninstall ]; then
  if systemd_live; then
    systemctl disable --now ctre-prune.timer ctre-record.service 2>/dev/null || true
  fi
  rm -f "$BIN"
  for u in "${UNIT_FILES[@]}"; do rm -f "$UNITS/$u"; done
  if [ "$purge" = 1 ]; then rm -rf "$DEFAULTS" "$SPOOL"; fi
  if systemd_live; then systemctl daemon-reload; fi
  echo "ctre removed; $( [ "$purge" = 1 ] && echo "usage DB and defaults removed too" || echo "kept $SPOOL and $DEFAULTS")"
  exit 0
fi

if [ -z "$binary" ]; then
  case "$(uname -m)" in
    x86_64) binary="$here/../dist/ctre-x86_64-linux" ;;
    aarch64|arm64) binary="$here/../dist/ctre-aarch64-linux" ;;
    *) die "no binary for $(uname -m); pass one" ;;
  esac
fi
[ -f "$binary" ] || die "binary \"$binary\" not found (build it with: deno task compile)"

install -D -m 0755 "$binary" "$BIN"
for u in "${UNIT_FILES[@]}"; do install -D -m 0644 "$here/systemd/$u" "$UNITS/$u"; done
[ -e "$DEFAULTS" ] || install -D -m 0644 "$here/systemd/ctre.default" "$DEFAULTS"
install -d -m 0700 "$SPOOL"
echo "installed $BIN, ${UNIT_FILES[*]} in $UNITS, defaults in $DEFAULTS, state in $SPOOL"
if [ "$enable" = 1 ]; then
  systemd_live || die "--enable needs a running systemd and no DESTDIR"
  systemctl daemon-reload
  systemctl enable --now ctre-record.service ctre-prune.timer
fi
