#!/usr/bin/env bash
# One command from a fresh clone to a finished store: a virtual environment in .venv,
# scatflow installed, the synthetic example day written to demo/, the tutorial network
# run on it with a local Dask cluster, then the store summary and a figure.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
DEMO=${DEMO:-demo}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet ".[plot]"

"$VENV/bin/scatflow" example "$DEMO"
"$VENV/bin/scatflow" run "$DEMO/config.toml"
"$VENV/bin/scatflow" info "$DEMO/results.zarr"
"$VENV/bin/scatflow" plot "$DEMO/results.zarr"
echo "open it in Python:  $VENV/bin/python -c \"import xarray as xr; print(xr.open_zarr('$DEMO/results.zarr', group='X9.SV13.'))\""
