#!/usr/bin/env bash
# Installs what the test suites need beyond npm packages, idempotently (fast when all is there):
#   redis-server, openssl      Debian packages (apt-get; needs root); not redis-server when the
#                              tests' Redis is a container (SFN_TEST_USE_DOCKER=1, docs/cluster.md)
#   moto's server              a Python venv outside the repo (test/compat/install-moto.sh)
#   promtool                   built from the Go module proxy (test/install-promtool.sh), to check
#                              the chart's alert rules
#   hadolint                   a Python venv outside the repo (test/lint/install-hadolint.sh)
#   the test control plane     kube-apiserver & co., etcd, kwok, helm built from the Go module proxy
#                              into ~/.cache/sfn-operator (test/cluster/build.sh; cold 10-15 min),
#                              unless the cluster tests use k3s in Docker (build.sh --unless-docker)
# `npm test` runs it first; .ci/run through `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test harness's own choice of backend (test/support/harness-selection.ts): local, docker, existing.
harness_backend() {
  local node=node_modules/.bin/node
  [ -x "$node" ] || node=node
  "$node" test/support/harness-selection-cli.ts "$1"
}

missing=()
command -v redis-server >/dev/null 2>&1 || [ "$(harness_backend redis)" = docker ] || missing+=(redis-server)
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
bash test/install-promtool.sh >/dev/null
bash test/cluster/build.sh --unless-docker
