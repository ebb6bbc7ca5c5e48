#!/usr/bin/env bash
# The whole test suite: installs what it needs (SoftHSM2, OpenSSL, PostgreSQL, Redis, zsh,
# Chromium, every extra, moto, OpenBao), checks lint and types, then runs pytest. The tests
# start their own servers; PostgreSQL and Redis are the machine's when they answer on
# 127.0.0.1:5432 (trust auth) / 6379, else private ones the tests start on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYPLANE_APT_PACKAGES="softhsm2 openssl postgresql redis-server zsh chromium" bash scripts/setup.sh "test"
venv="${KEYPLANE_VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
echo "== ruff"; ruff check signers backends conformance tests benchmarks
echo "== mypy"; mypy
echo "== pytest"
status=0
python -m pytest "$@" || status=$?
exit $status
