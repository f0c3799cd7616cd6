#!/usr/bin/env bash
# For the browser tests only (`make test`; `make run` never needs this): Debian's Chromium and ChromeDriver,
# and the fonts the screenshots need (Chinese documents, the ✅/❌ marks). Playwright drives this Chromium;
# it downloads no browser of its own.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fonts=$(fc-list 2>/dev/null || true)
grep -qi "Noto Sans CJK" <<<"$fonts" || need+=(fonts-noto-cjk)
grep -qi "Noto Color Emoji" <<<"$fonts" || need+=(fonts-noto-color-emoji)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "== installing ${need[*]} (Debian packages, for the browser tests)"
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
  echo "the browser tests need: apt-get install ${need[*]} (as root). Fix: run that, or make test as root." >&2
  exit 1
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
