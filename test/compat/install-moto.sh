#!/usr/bin/env bash
# Installs moto's server (an independent Step Functions implementation) into a Python virtualenv
# outside the repository, for test/compat. Idempotent: when the venv already holds exactly the
# pinned requirements it does nothing, so .ci/run can call it on every run.
#
#   SFN_TEST_MOTO_VENV   where the venv lives (default ~/.cache/sfn-operator/moto-venv)
#   PYTHON               the interpreter to build it from (default python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${SFN_TEST_MOTO_VENV:-$HOME/.cache/sfn-operator/moto-venv}"
stamp="$venv/.sfn-operator-requirements"
# What the venv must hold: both files, so a change to either one reinstalls.
wanted="$(cat "$here/moto-requirements.txt" "$here/moto-constraints.txt")"

# The stamp is written only after a successful install: comparing it (rather than asking pip) makes
# the no-op case instant and catches a half-finished earlier install.
if [ -x "$venv/bin/moto_server" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  echo "moto venv up to date: $venv"
  exit 0
fi

python="${PYTHON:-python3}"
# Debian's python3 ships venv/ensurepip in a separate package; pyenv's and python.org's have them.
if ! "$python" -c "import venv, ensurepip" >/dev/null 2>&1; then
  echo "installing python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-venv >/dev/null
fi

echo "creating moto venv: $venv"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  -r "$here/moto-requirements.txt"
# Fail here rather than in the test if the install is unusable.
"$venv/bin/python" -c "import moto.server, moto.stepfunctions.parser.models"
printf '%s' "$wanted" >"$stamp"
echo "moto venv ready: $("$venv/bin/python" -m pip show moto 2>/dev/null | sed -n 's/^Version: /moto /p')"
