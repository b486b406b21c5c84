#!/usr/bin/env bash
# Set up what the tests need and run the whole suite: lint, types, pytest
# (browser test included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-test.txt

# The browser test drives Debian's chromium; install it when missing and we may.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser test..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The PACS tests run against a real Orthanc (with DICOMweb); dciodvfy (dicom3tools)
# validates the DICOM the product writes. Install them when missing and we may.
if ! command -v Orthanc >/dev/null 2>&1 && [ ! -x /usr/sbin/Orthanc ] && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null; then
    echo "installing Debian's orthanc, orthanc-dicomweb and dicom3tools for the PACS tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        orthanc orthanc-dicomweb dicom3tools >/dev/null
    # The package starts a system Orthanc on the default ports; the tests start their own.
    (service orthanc stop || true) >/dev/null 2>&1
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
