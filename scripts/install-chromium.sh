#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright's own browser download does not
# work offline). Needs root or sudo; skipped when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
else
  echo "install-chromium: no apt-get here; install Chromium at /usr/bin/chromium yourself" >&2
fi
