#!/usr/bin/env bash
# Set up a test environment from nothing but Python and pip, then run the whole test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k calibration`).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MEDFM_ROBUST_TEST_VENV:-.venv-test}"
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch only for the MRI reference checks (MONAI); the CPU build of this release is small.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[dev]"
# The ImageNet-C reference pins opencv-python, which would shadow opencv-python-headless.
"${pip[@]}" --no-deps "imagecorruptions==1.1.2"
exec "$venv/bin/python" -m pytest "$@"
