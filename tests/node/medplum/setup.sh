#!/bin/sh
# Installs the Medplum test peer's pinned packages (package-lock.json) into tests/node/medplum.
# Run once before the tests; the tests themselves never download anything.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
