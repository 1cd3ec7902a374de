#!/usr/bin/env bash
# Ingestion benchmark: generate N events as JSONL, ingest, re-ingest (must insert 0), read back.
# Usage: benchmarks/ingest.sh [--events 1000000] [--store URL] [--workdir DIR] [--record STORE_URL] [--json PATH]
# Prints one line per figure; the last line is one JSON object. --record keeps it in a store's experiment registry.
set -euo pipefail
cd "$(dirname "$0")/.."
exec nice -n 5 .venv/bin/shoprec bench ingest "$@"
