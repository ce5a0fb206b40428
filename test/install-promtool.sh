#!/usr/bin/env bash
# Builds promtool (Prometheus' rule checker) from the Go module proxy into
# ~/.cache/sfn-operator/bin/promtool-<version>/promtool, where test/unit/monitoring.test.ts finds it to
# check the chart's alert rules with Prometheus' own parser and run their unit tests. A binary already
# there is kept (cold: about 7 minutes and 3 GB of Go caches; warm: nothing). Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster/go-env.sh
. "$here/cluster/go-env.sh"

dir="$HOME/.cache/sfn-operator/bin/promtool-${PROMTOOL_VERSION#v}"
if [ ! -x "$dir/promtool" ]; then
  echo "test setup: building promtool $PROMTOOL_VERSION (once; about 7 minutes)" >&2
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  GOBIN="$stage" go install -trimpath -ldflags "-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION" >&2
  mkdir -p "$dir"
  mv "$stage/promtool" "$dir/promtool"
fi
echo "$dir/promtool"
