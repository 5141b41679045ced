#!/usr/bin/env bash
# Build the one-file binary: dist/shopimind-sidecar (Linux x86-64, Python and every
# dependency inside; the target needs nothing installed). Run through `make binary`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/work build/shopimind-sidecar.spec
./dist/shopimind-sidecar --version
