# Sourced by the setup scripts: run a step with its output held back, shown only if it fails.
# A fallback that is expected to fail (apt-get download before the first apt-get update) prints
# nothing; a real failure prints one line saying what failed and what to do, then the tool's own
# last error line, and exits 1.

# quietly WHAT_TO_DO CMD...: runs CMD silently; on failure prints WHAT_TO_DO and CMD's last error.
quietly() {
  local hint=$1 log said
  shift
  log=$(mktemp)
  if "$@" >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  said=$(grep -E '^(E:|npm ERR!|npm error)' "$log" | tail -n 1) || true
  [ -n "$said" ] || said=$(tail -n 1 "$log")
  echo "setup: $hint (${1##*/} said: ${said:-nothing})" >&2
  rm -f "$log"
  exit 1
}

# apt_install PACKAGE...: apt-get install, after an apt-get update only when the first try fails
# (a fresh machine has no package lists yet).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  if "${apt[@]}" install "$@" >/dev/null 2>&1; then return 0; fi
  quietly "apt-get update failed; check the apt sources and network access to the Debian archive" \
    "${apt[@]}" update
  quietly "apt-get could not install $*; run \"apt-get install $*\" to see why" \
    "${apt[@]}" install "$@"
}

# npm_into DIR PACKAGE@VERSION...: installs test-only npm packages under DIR (its own
# node_modules), once per list of versions (a stamp file names them).
npm_into() {
  local dir=$1 stamp
  shift
  stamp="$dir/.complete-$(printf '%s' "$*" | tr -c 'A-Za-z0-9.@_-' '_')"
  [ -f "$stamp" ] && return 0
  echo "setup: installing $* into $dir (tests only)" >&2
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"private":true}' >"$dir/package.json"
  quietly "npm could not install $*; check access to registry.npmjs.org" \
    npm install --prefix "$dir" --no-audit --no-fund "$@"
  touch "$stamp"
}
