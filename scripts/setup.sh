#!/usr/bin/env bash
# Create ./.venv and install appshot with its test tools. Idempotent.
# PyTorch: the CPU wheel torch==2.13.0 is installed explicitly first; GPU users install their
# CUDA build of torch 2.13 into the venv before running this (see README) and it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
if ! python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13') else 1)" 2>/dev/null; then
    python -m pip install --quiet "torch==2.13.0"
fi
python -m pip install --quiet -e ".[dev,postgres]"
