#!/usr/bin/env bash
# One-time set-up for fhirtrial's validator tests and benchmark (CI runs it; tests never download).
#  - installs FHIR.js (npm `fhir`, pinned in package-lock.json) beside this script;
#  - fetches the official FHIR packages as npm tarballs into <repo>/.cache/fhir-packages/.
# The test session installs the core tarball into a temporary FHIR package cache with
# `fhirtrial packages install`, so the installer itself is exercised.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="${FHIRTRIAL_NPM_CACHE_DIR:-$root/.cache/fhir-packages}"

command -v npm >/dev/null || { echo "setup.sh: npm is required (Node 18+)" >&2; exit 2; }

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

mkdir -p "$cache"
for spec in hl7.fhir.r5.core@5.0.0 hl7.fhir.r5.examples@5.0.0 hl7.fhir.r4.examples@4.0.1; do
  name="${spec%@*}"; ver="${spec#*@}"
  if [[ -s "$cache/$name-$ver.tgz" ]]; then
    echo "have $name-$ver.tgz"
  else
    (cd "$cache" && npm pack "$spec" --silent --loglevel=error >/dev/null)
    echo "fetched $name-$ver.tgz"
  fi
done
echo "FHIR packages in $cache"
