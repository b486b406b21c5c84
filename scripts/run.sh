#!/usr/bin/env bash
# Set up (first time) and start the dashboard on the embedded default:
# the SQLite file data/bonescan.sqlite (override with BONESCAN_DB=/path/file.sqlite).
# The page is served on http://127.0.0.1:${PORT:-8501}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
.venv/bin/python -m core init-db
# First start: fill an empty store with the synthetic demo cohort (about half a minute).
.venv/bin/python -m core demo-cohort --if-empty
# Stored studies without an analysis (the demo cohort on a first start) are analysed in
# the background by the shipped models, so the dashboard opens at once; pages show how
# many are still waiting. The log is data/logs/analyze-stored.log.
mkdir -p data/logs
# flock: a second start while the first is still analysing does not start another run.
nohup flock -n data/logs/analyze-stored.lock .venv/bin/python -m core analyze-stored \
    --account demo-setup --quiet >data/logs/analyze-stored.log 2>&1 &
exec .venv/bin/python -m streamlit run app.py \
    --server.address "${HOST:-127.0.0.1}" --server.port "${PORT:-8501}" --server.headless true
