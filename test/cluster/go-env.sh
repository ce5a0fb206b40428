# Sourced by the scripts that build test binaries from the Go module proxy (test/cluster/build.sh,
# test/install-promtool.sh): the pinned versions, and one Go environment for all of them.
# shellcheck source=versions.env
. "$(dirname "${BASH_SOURCE[0]}")/versions.env"

export PATH="/usr/local/go/bin:$PATH"
# Every Go cache stays outside the repo (Go's defaults, made explicit); never fetch another toolchain;
# static binaries that depend on no libc.
export GOPATH="${GOPATH:-$HOME/go}" GOCACHE="${GOCACHE:-$HOME/.cache/go-build}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"
