#!/usr/bin/env bash
# Installs a built ctre binary and its systemd units onto a node, or removes them.
#
#   scripts/install.sh [BINARY] [--enable]     # default BINARY: dist/ctre-<arch>-linux
#   scripts/install.sh --from-source [--deno DENO] [--enable]
#   scripts/install.sh --uninstall [--purge]   # --purge also removes /etc/default/ctre and the usage DB
#
# --from-source (where `deno compile` cannot run): copies DENO (default: the deno on PATH) and
# main.ts + lib/ to /usr/local/lib/ctre/, and makes /usr/local/bin/ctre a script that execs
# `deno run` on them with exactly the shipped permissions (scripts/source_wrapper.ts).
# Units go to /etc/systemd/system/, the state dir's tmpfiles.d entry to /etc/tmpfiles.d/ctre.conf,
# the man page ctre(1) and bash, zsh and fish completions under /usr/local/share.
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
TMPFILES="$DESTDIR/etc/tmpfiles.d/ctre.conf"
SOURCE_DIR=/usr/local/lib/ctre
UNIT_FILES=(ctre-record.service ctre-prune.service ctre-prune.timer)
# The man page and the completions, as `ctre man` and `ctre completion SHELL` print them, where
# man, bash-completion, zsh and fish look under /usr/local/share.
SHARE="$DESTDIR/usr/local/share"
declare -A DOCS=(
  ["$SHARE/man/man1/ctre.1"]=man
  ["$SHARE/bash-completion/completions/ctre"]="completion bash"
  ["$SHARE/zsh/site-functions/_ctre"]="completion zsh"
  ["$SHARE/fish/vendor_completions.d/ctre.fish"]="completion fish"
)

die() { echo "install.sh: $*" >&2; exit 1; }
systemd_live() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

mode=install binary="" enable=0 purge=0 from_source=0 deno=""
while [ $# -gt 0 ]; do
  arg=$1
  shift
  case "$arg" in
    --uninstall) mode=uninstall ;;
    --purge) purge=1 ;;
    --enable) enable=1 ;;
    --from-source) from_source=1 ;;
    --deno) [ $# -gt 0 ] || die "--deno needs a path"; deno=$1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) die "unknown option \"$arg\"" ;;
    *) binary=$arg ;;
  esac
done

if [ "$mode" = uninstall ]; then
  if systemd_live; then
    systemctl disable --now ctre-prune.timer ctre-record.service 2>/dev/null || true
  fi
  rm -f "$BIN" "$TMPFILES"
  rm -rf "${DESTDIR}${SOURCE_DIR}"
  for u in "${UNIT_FILES[@]}"; do rm -f "$UNITS/$u"; done
  for d in "${!DOCS[@]}"; do rm -f "$d"; done
  if [ "$purge" = 1 ]; then rm -rf "$DEFAULTS" "$SPOOL"; fi
  if systemd_live; then systemctl daemon-reload; fi
  echo "ctre removed; $( [ "$purge" = 1 ] && echo "usage DB and defaults removed too" || echo "kept $SPOOL and $DEFAULTS")"
  exit 0
fi

if [ "$from_source" = 1 ]; then
  [ -z "$binary" ] || die "--from-source takes no BINARY"
  [ -n "$deno" ] || deno=$(command -v deno) || die "no deno on PATH; pass --deno DENO"
  [ -x "$deno" ] || die "deno \"$deno\" not found"
  # The real binary, not a launcher (npm's deno is a symlink into node_modules).
  deno_bin=$("$deno" eval --quiet 'console.log(Deno.execPath())') || die "\"$deno\" does not run"
  wrapper=$("$deno" run --quiet --no-config --no-lock "$here/source_wrapper.ts" \
    "$SOURCE_DIR/deno" "$SOURCE_DIR") || die "cannot generate the ctre wrapper"
  rm -rf "${DESTDIR}${SOURCE_DIR}"
  install -D -m 0755 "$deno_bin" "${DESTDIR}${SOURCE_DIR}/deno"
  install -m 0644 "$here/../main.ts" "${DESTDIR}${SOURCE_DIR}/main.ts"
  (cd "$here/.." && find lib -name '*.ts' -print0) | while IFS= read -r -d '' f; do
    install -D -m 0644 "$here/../$f" "${DESTDIR}${SOURCE_DIR}/$f"
  done
  install -d -m 0755 "$(dirname "$BIN")"
  printf '%s\n' "$wrapper" >"$BIN.tmp"
  chmod 0755 "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
  ctre=("$deno_bin" run --quiet --no-config --no-lock "$here/../main.ts")
else
  if [ -z "$binary" ]; then
    case "$(uname -m)" in
      x86_64) binary="$here/../dist/ctre-x86_64-linux" ;;
      aarch64|arm64) binary="$here/../dist/ctre-aarch64-linux" ;;
      *) die "no binary for $(uname -m); pass one" ;;
    esac
  fi
  [ -f "$binary" ] || die "binary \"$binary\" not found (build it with: deno task compile, or use --from-source)"
  install -D -m 0755 "$binary" "$BIN"
  ctre=("$binary")
fi
# `ctre man` and `ctre completion` need no permission; printed by the ctre being installed.
for d in "${!DOCS[@]}"; do
  install -d -m 0755 "$(dirname "$d")"
  # shellcheck disable=SC2086 # the command's words
  "${ctre[@]}" ${DOCS[$d]} >"$d.tmp" || die "cannot write $d (${ctre[*]} ${DOCS[$d]} failed)"
  chmod 0644 "$d.tmp"
  mv "$d.tmp" "$d"
done
for u in "${UNIT_FILES[@]}"; do install -D -m 0644 "$here/systemd/$u" "$UNITS/$u"; done
install -D -m 0644 "$here/systemd/ctre.tmpfiles" "$TMPFILES"
[ -e "$DEFAULTS" ] || install -D -m 0644 "$here/systemd/ctre.default" "$DEFAULTS"
# As the tmpfiles.d entry says: the state dir traversable but not listable, metrics readable.
install -d -m 0711 "$SPOOL"
install -d -m 0755 "$SPOOL/metrics"
echo "installed $BIN, ${UNIT_FILES[*]} in $UNITS, $TMPFILES, defaults in $DEFAULTS, state in $SPOOL, the man page and completions in $SHARE"
if [ "$enable" = 1 ]; then
  systemd_live || die "--enable needs a running systemd and no DESTDIR"
  systemctl daemon-reload
  systemctl enable --now ctre-record.service ctre-prune.timer
fi
