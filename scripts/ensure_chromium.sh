#!/usr/bin/env bash
# Make sure headless Chromium is available for the browser test (tests/pipeline/report/test_browser.py).
# Installs Debian's `chromium` package with apt-get when missing; needs root (or passwordless sudo).
# Prints the path of the browser on success; exits non-zero with one clear line otherwise.
set -euo pipefail

find_chromium() {
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if path="$(find_chromium)"; then
    echo "$path"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "ensure_chromium: chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2

if path="$(find_chromium)"; then
    echo "$path"
    exit 0
fi
echo "ensure_chromium: apt-get finished but no chromium binary is on PATH" >&2
exit 1
