#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the pinned requirements into it.
# Usage: scripts/setup.sh [requirements file]   (default: requirements.txt)
# Re-running is cheap: pip is skipped while the requirements file is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    "$python" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
    if ! "$python" -m venv .venv; then
        # Debian ships venv separately (python3-venv); install it when we may.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            rm -rf .venv && "$python" -m venv .venv
        else
            echo "python3 -m venv failed: install Debian's python3-venv (sudo apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
fi
stamp=".venv/.installed-$(basename "$req")"
want=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet -r "$req"
    echo "$want" > "$stamp"
fi
