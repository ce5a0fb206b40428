# Sourced by the scripts that install a Python tool the tests need into a virtualenv outside the
# repository (test/compat/install-moto.sh, test/lint/install-hadolint.sh).
#
#   ensure_venv <name> <venv> <marker> <wanted> <requirements file> <check command...>
#
# Does nothing when <venv>/bin/<marker> exists and the venv's stamp equals <wanted> (the pinned
# requirements' text): comparing a stamp rather than asking pip makes the no-op case instant, and as
# the stamp is written only after a successful install and check, a half-finished install is redone.
# Otherwise builds the venv from $PYTHON (default python3), installing python3-venv first where
# Debian's python3 lacks it (as root), installs <requirements file>, and runs the check command so
# that an unusable install fails here rather than in a test.
ensure_venv() {
  local name="$1" venv="$2" marker="$3" wanted="$4" requirements="$5"
  shift 5
  local stamp="$venv/.sfn-operator-requirements"
  if [ -x "$venv/bin/$marker" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    echo "$name venv up to date: $venv"
    return 0
  fi

  local python="${PYTHON:-python3}"
  # Debian's python3 ships venv/ensurepip in a separate package; pyenv's and python.org's have them.
  if ! "$python" -c "import venv, ensurepip" >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "$name: python3's venv module is missing; install it (sudo apt-get install -y python3-venv) and run again" >&2
      return 1
    fi
    echo "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
  fi

  echo "creating $name venv: $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
  "$@"
  printf '%s' "$wanted" >"$stamp"
}
