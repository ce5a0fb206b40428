#!/usr/bin/env bash
# `npm run lint:dockerfile`: lints the Dockerfile with hadolint (installed on first use by
# install-hadolint.sh). The rules and their few exceptions, each with its reason, are in
# .hadolint.yaml at the repository's root; any warning fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/lint/install-hadolint.sh
venv="${SFN_TEST_HADOLINT_VENV:-$HOME/.cache/sfn-operator/hadolint-venv}"
"$venv/bin/hadolint" --no-color --config .hadolint.yaml Dockerfile
echo "hadolint: Dockerfile clean"
