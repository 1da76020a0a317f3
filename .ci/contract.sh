#!/usr/bin/env bash
# Contract check: simulator responses and connector query parameters against the vendors' specs
# (../shared/vendor). See docs/simulator.md, "Contract check". Idempotent:
#   - creates the virtualenv ~/.cache/syncline/contract-venv when it is missing and installs the
#     pins (jsonschema, PyYAML);
#   - runs the checker's own tests (.ci/contract/test_check.py: fixtures validate, drift fails);
#   - runs .ci/contract/check.py with the release syncline binary of $CARGO_TARGET_DIR, which
#     it builds first unless SYNCLINE_CONTRACT_NO_BUILD=1.
# Extra arguments go to check.py (e.g. --connector halopsa --keep).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="$HOME/.cache/syncline"
venv="$cache/contract-venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

mkdir -p "$cache"
if ! "$venv/bin/python" -c 'import jsonschema, yaml' >/dev/null 2>&1; then
    echo "installing jsonschema and PyYAML into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'jsonschema>=4.18,<5' 'PyYAML>=6,<7'
fi

if [ "${SYNCLINE_CONTRACT_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --workspace --quiet
fi

echo "-- the checker's own tests"
"$venv/bin/python" .ci/contract/test_check.py
echo "-- simulator and connectors against the vendors' specs"
"$venv/bin/python" .ci/contract/check.py --syncline "$CARGO_TARGET_DIR/release/syncline" "$@"
