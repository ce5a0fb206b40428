#!/usr/bin/env bash
# Installs moto's server (an independent Step Functions implementation) into a Python virtualenv
# outside the repository, for test/compat. Idempotent: when the venv already holds exactly the
# pinned requirements it does nothing, so .ci/run can call it on every run (test/python-venv.sh).
#
#   SFN_TEST_MOTO_VENV   where the venv lives (default ~/.cache/sfn-operator/moto-venv)
#   PYTHON               the interpreter to build it from (default python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../python-venv.sh
. "$here/../python-venv.sh"
venv="${SFN_TEST_MOTO_VENV:-$HOME/.cache/sfn-operator/moto-venv}"

# What the venv must hold: both files, so a change to either one reinstalls. The check: the server
# and the Step Functions models it needs import.
ensure_venv moto "$venv" moto_server "$(cat "$here/moto-requirements.txt" "$here/moto-constraints.txt")" \
  "$here/moto-requirements.txt" "$venv/bin/python" -c "import moto.server, moto.stepfunctions.parser.models"
echo "moto venv ready: $("$venv/bin/python" -m pip show moto 2>/dev/null | sed -n 's/^Version: /moto /p')"
