#!/usr/bin/env bash
# Build, or reuse, the separate environment in which gyre runs Spyral's own phases:
# <repo>/.venv-spyral with gyre installed editable and the [spyral] extra.
# Spyral pins numpy<2.2 (through spyral-utils), so it does not share the main .venv.
# spyral-utils builds C++ code against Eigen: libeigen3-dev is installed when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${GYRE_SPYRAL_VENV:-.venv-spyral}
PY=${PYTHON_FOR_SPYRAL:-python3}
READY="$VENV/.gyre-spyral-ready"

if [ -f "$READY" ] && "$VENV/bin/python" -c "import spyral, attpc_engine, gyre.compat.spyral" 2>/dev/null; then
    echo "reusing $VENV"
    exit 0
fi

if [ ! -f /usr/include/eigen3/Eigen/Core ] || ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q libeigen3-dev cmake g++
    else
        echo "spyral-utils needs Eigen3, cmake and g++ to build: install libeigen3-dev cmake g++ (as root)" >&2
        exit 3
    fi
fi

rm -f "$READY"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -U pip
"$VENV/bin/python" -m pip install -q -e '.[spyral]'
"$VENV/bin/python" -c "import spyral, attpc_engine, gyre.compat.spyral"
touch "$READY"
echo "built $VENV"
