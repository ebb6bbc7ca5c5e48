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
# Skip the install when this checkout is already installed (editable) with every extra asked
# for and pyproject.toml has not changed since: a stamp in the venv records what was installed.
stamp="$venv/.keyplane-installed"
source_id="$(pwd) $(sha256sum pyproject.toml | cut -d' ' -f1)"
installed_extras=""
if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$source_id" ]; then
  installed_extras="$(sed -n 2p "$stamp")"
fi
missing=""
for extra in ${extras//,/ }; do
  case ",$installed_extras," in *",$extra,"*) ;; *) missing="$missing $extra" ;; esac
done
if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$source_id" ] && [ -z "$missing" ] \
   && "$venv/bin/python" -c "import signers, backends, conformance" >/dev/null 2>&1; then
  echo "setup: keyplane${extras:+[$extras]} already installed in $venv (delete $stamp to reinstall)"
  exit 0
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
target="."
[ -n "$extras" ] && target=".[$extras]"
echo "setup: installing keyplane${extras:+[$extras]} into $venv"
# The filter silences setuptools' "Editable installation" banner (it is a warning in the build
# back end's process, which inherits PYTHONWARNINGS); real errors still print and fail.
set +e
PYTHONWARNINGS="ignore:Editable installation" \
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target" 2>&1 | grep -v '^WARNING: Location'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "setup: pip install -e '$target' failed (exit $status)" >&2
  exit "$status"
fi
"$venv/bin/python" -c "import signers, backends, conformance"
all_extras="$(printf '%s\n' ${installed_extras//,/ } ${extras//,/ } | sort -u | paste -sd, -)"
printf '%s\n%s\n' "$source_id" "$all_extras" > "$stamp"
