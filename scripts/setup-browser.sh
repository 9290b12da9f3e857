#!/usr/bin/env bash
# Installs the browser the UI tests drive (tests/test_browser.py): Debian's chromium and
# chromium-driver, from apt. Selenium then uses /usr/bin/chromedriver; nothing is downloaded
# when the tests run. Already installed: nothing to do. Not root, or no apt: this says why and
# exits 0, and the browser tests skip with that reason.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "setup-browser: chromium and chromedriver present" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: no apt-get here; install chromium and its chromedriver at" \
       "/usr/bin/chromium and /usr/bin/chromedriver, or the browser tests will be skipped" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-browser: not root, so not installing; run: sudo apt-get install -y chromium" \
       "chromium-driver (the browser tests are skipped until then)" >&2
  exit 0
fi
echo "setup-browser: apt-get install chromium chromium-driver" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver
