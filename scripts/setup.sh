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
apt_install() {
  echo "setup: installing Debian packages: $*"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install $*" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ ${#apt_needed[@]} -gt 0 ]; then
  apt_install "${apt_needed[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
  # Debian's python3 makes venvs only with python3-venv (ensurepip's wheels) installed.
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
target="."
[ -n "$extras" ] && target=".[$extras]"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target" 2>&1 | grep -v '^WARNING: Location' || true
"$venv/bin/python" -c "import signers, backends, conformance" 
