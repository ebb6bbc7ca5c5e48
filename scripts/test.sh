#!/usr/bin/env bash
# The whole test suite: installs what it needs (SoftHSM2, OpenSSL, every extra, moto,
# OpenBao), checks lint and types, then runs pytest. The tests start their own servers.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYPLANE_APT_PACKAGES="softhsm2 openssl" bash scripts/setup.sh "test"
venv="${KEYPLANE_VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
echo "== ruff"; ruff check signers backends conformance tests benchmarks
echo "== mypy"; mypy
echo "== pytest"
status=0
python -m pytest "$@" || status=$?
exit $status
