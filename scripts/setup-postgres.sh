#!/usr/bin/env bash
# PostgreSQL for the tests of the PostgreSQL store (tests/pg.py starts a throwaway cluster
# from these binaries; nothing is configured or started here). Debian/Ubuntu: apt-installs
# the `postgresql` package when initdb is missing and we are root; otherwise says why it skips
# (the PostgreSQL half of the server tests then skips, saying so).
set -euo pipefail

if [ -n "${FHIRTRIAL_TEST_PG:-}" ]; then
  echo "setup-postgres: FHIRTRIAL_TEST_PG is set; the tests use that server"
  exit 0
fi
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  echo "setup-postgres: PostgreSQL found ($(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || command -v initdb))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-postgres: skipped: no apt-get here; install PostgreSQL (initdb, postgres) yourself or set PG_BINDIR / FHIRTRIAL_TEST_PG"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-postgres: skipped: not root; run 'sudo apt-get install postgresql' or set FHIRTRIAL_TEST_PG=postgresql://…"
  exit 0
fi
echo "setup-postgres: apt-get install postgresql"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql
# the package starts a system cluster; the tests never use it
ls -d /usr/lib/postgresql/*/bin
