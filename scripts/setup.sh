#!/usr/bin/env bash
# Prepare a machine for keyplane: Debian packages when missing, then a virtualenv in
# .venv (or $KEYPLANE_VENV) with keyplane installed editable with the extras in $1.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
venv="${KEYPLANE_VENV:-.venv}"

apt_needed=()
if [ -n "${KEYPLANE_APT_PACKAGES:-}" ]; then
  for pkg in $KEYPLANE_APT_PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || apt_needed+=("$pkg")
  done
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_needed+=(python3-venv)
fi
if [ ${#apt_needed[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${apt_needed[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install ${apt_needed[*]}" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
target="."
[ -n "$extras" ] && target=".[$extras]"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target" 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/python" -c "import signers, backends, conformance" 
