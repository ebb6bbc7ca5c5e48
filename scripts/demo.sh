#!/usr/bin/env bash
# The main job: install keyplane (core only) and run the demo on the embedded file back end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "" >&2
exec "${KEYPLANE_VENV:-.venv}/bin/keyplane" demo "$@"
