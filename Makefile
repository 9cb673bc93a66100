# The two commands the README opens with: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint services-up services-down bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## demo: synthetic stream with an injected drift, replayed with no Kafka and no Redis
demo: $(STAMP)
	$(BIN)/driftwire generate --out demo.jsonl --events 12000 --drift-at 4000 --drift-until 8000
	$(BIN)/driftwire replay demo.jsonl --alerts-out demo-alerts.jsonl
	$(BIN)/driftwire report demo.jsonl --out demo-report.html
	@$(BIN)/driftwire alerts show demo-alerts.jsonl
	@echo "alerts: demo-alerts.jsonl   report: demo-report.html"

## test: real Kafka and Redis from scripts/services.sh (plain, and secured: SASL_SSL + ACLs, TLS Redis), then lint, types and pytest
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy detectors pipeline benchmarks
	scripts/ensure_chromium.sh >/dev/null
	services="$$(scripts/services.sh up --secure)" && eval "$$services" && $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/mypy detectors pipeline benchmarks

services-up:
	scripts/services.sh up

services-down:
	scripts/services.sh down

clean:
	rm -rf $(VENV) demo.jsonl demo-alerts.jsonl demo-report.html
