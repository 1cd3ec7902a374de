# Two commands on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-install whenever pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DEMO_DIR ?= shoprec-data/demo

.PHONY: venv demo demo-data test test-all e2e bench-search bench-seqrec clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the local CPU build, so no dependency can pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

demo-data: venv
	$(BIN)/shoprec demo-data --out $(DEMO_DIR)

# Generate the demo shop, ingest it, build every artifact and serve on http://127.0.0.1:8000.
demo: demo-data
	$(BIN)/shoprec ingest catalog $(DEMO_DIR)/products.jsonl
	$(BIN)/shoprec ingest events $(DEMO_DIR)/events.jsonl
	$(BIN)/shoprec build
	$(BIN)/shoprec serve --host 127.0.0.1 --port 8000

test: venv
	$(BIN)/python -m pytest

# Browser end-to-end tests: installs Debian's Chromium when missing (needs root), screenshots in test-artifacts/e2e.
e2e: venv
	(command -v chromium && dpkg -s fonts-wqy-microhei) >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null)
	$(BIN)/python -m pytest -m e2e

# Every tier, slow and real-data included.
test-all: venv
	$(BIN)/python -m pytest -m ""

bench-search: venv
	$(BIN)/shoprec bench search --products ../shared/data/homedepot/products.csv --judgments ../shared/data/homedepot/judgments_dev.csv

bench-seqrec: venv
	$(BIN)/shoprec bench seqrec --data ../shared/data/amazon --dataset Beauty --models all

clean:
	rm -rf $(VENV) shoprec-data test-artifacts
