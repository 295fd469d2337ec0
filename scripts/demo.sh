#!/usr/bin/env bash
# Fresh machine -> whole demo: set up ./.venv, then simulate the demo world, train the three
# peak-hour models and generate every city x peak hour, recorded as Dagster runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
exec .venv/bin/appshot demo "$@"
