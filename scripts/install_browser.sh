#!/usr/bin/env bash
# For the browser tests only (`make test`; `make run` never needs this): a Chromium for Playwright to drive, and the
# fonts the screenshots need (Chinese documents, the ✅/❌ marks).
#   scripts/install_browser.sh [PYTHON]     (PYTHON: the venv's, for Playwright's own Chromium)
# Debian: its chromium package (/usr/bin/chromium; Playwright downloads no browser). Ubuntu: apt's chromium is a
# transitional package that installs a snap, which does not run headless in containers or CI; there the browser is
# Playwright's own Chromium (`playwright install chromium`), which tests/ui/conftest.py finds when /usr/bin/chromium
# is missing.
set -euo pipefail
python=${1:-.venv/bin/python}
need=()
fonts=$(fc-list 2>/dev/null || true)
grep -qi "Noto Sans CJK" <<<"$fonts" || need+=(fonts-noto-cjk)
grep -qi "Noto Color Emoji" <<<"$fonts" || need+=(fonts-noto-color-emoji)

# apt's chromium is a snap in disguise where its package depends on snapd (Ubuntu), or where the distribution is Ubuntu
snap_chromium() {
  local id=""
  [ -r /etc/os-release ] && id=$(. /etc/os-release && echo "${ID:-}")
  [ "$id" = ubuntu ] && return 0
  apt-cache depends chromium 2>/dev/null | grep -q "snapd"
}
playwright_chromium=0
if [ ! -x /usr/bin/chromium ]; then
  if snap_chromium; then playwright_chromium=1; else need+=(chromium); fi
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (apt packages, for the browser tests)"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "the browser tests need: apt-get install ${need[*]} (as root). Fix: run that, or make test as root." >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "$playwright_chromium" = 1 ]; then
  if "$python" -c "from playwright.sync_api import sync_playwright as p; import os, sys
with p() as pw: sys.exit(0 if os.path.exists(pw.chromium.executable_path) else 1)" 2>/dev/null; then exit 0; fi
  echo "== apt's chromium is a snap here: installing Playwright's own Chromium and its libraries instead"
  "$python" -m playwright install chromium
  if [ "$(id -u)" -eq 0 ]; then "$python" -m playwright install-deps chromium
  elif command -v sudo >/dev/null 2>&1; then sudo "$python" -m playwright install-deps chromium
  else echo "Playwright's Chromium may miss system libraries. Fix: sudo $python -m playwright install-deps chromium" >&2
  fi
fi
