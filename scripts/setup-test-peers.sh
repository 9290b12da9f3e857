#!/usr/bin/env bash
# Installs the test peers that do not come from PyPI: the Node.js harnesses under tests/node/
# (Medplum's FHIR engine, FHIR.js) and the official FHIR packages they and the validator use.
# Everything comes from the npm registry; nothing is downloaded when the tests run.
# Without node/npm this prints why and exits 0: those tests then skip with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup-test-peers: node/npm not found; the Medplum and FHIR.js tests will be skipped" >&2
  exit 0
fi
for setup in tests/node/*/setup.sh; do
  [ -f "$setup" ] || continue
  echo "setup-test-peers: $setup" >&2
  bash "$setup"
done
