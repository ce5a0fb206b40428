#!/usr/bin/env bash
# Installs what the test suites need beyond npm packages, idempotently (fast when all is there):
#   redis-server, openssl      Debian packages (apt-get; needs root)
#   moto's server              a Python venv outside the repo (test/compat/install-moto.sh)
#   hadolint                   a Python venv outside the repo (test/lint/install-hadolint.sh)
#   the test control plane     kube-apiserver & co., etcd, kwok, helm built from the Go module proxy
#                              into ~/.cache/sfn-operator (test/cluster/build.sh; cold 10-15 min)
# `npm test` runs it first; .ci/run through `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test setup: missing ${missing[*]}; install them (sudo apt-get install -y ${missing[*]}) and run again" >&2
    exit 1
  fi
  echo "test setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v kubectl >/dev/null 2>&1 || echo "test setup: warning: kubectl is not on the PATH; the cluster tests need it" >&2

bash test/compat/install-moto.sh
bash test/lint/install-hadolint.sh
bash test/cluster/build.sh
