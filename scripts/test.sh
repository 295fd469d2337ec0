#!/usr/bin/env bash
# Fresh machine -> test suite: set up ./.venv, then run pytest. Exit code 5 (no tests collected)
# counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export DAGSTER_HOME="${DAGSTER_HOME:-$(mktemp -d)}"
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
