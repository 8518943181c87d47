# The targets README.md names. `make demo` and `make test` work on a fresh machine.
VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: setup system demo test check lint typecheck unit integration generate

setup:
	@scripts/setup.sh

# Debian's prometheus, alertmanager, PostgreSQL, poppler, CJK fonts; the Kafka jars from Maven.
system:
	@scripts/install-system.sh
	@scripts/kafka/kafka.sh fetch

demo: setup
	$(BIN)/hotline-kpi demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	scripts/typecheck.sh

unit: setup
	$(BIN)/pytest tests/unit -q

integration: setup system
	$(BIN)/pytest tests/integration -q

# Everything CI runs: static checks, then the fast unit tests first, then the real components.
test: setup system lint typecheck
	$(BIN)/pytest tests/unit -q
	$(BIN)/pytest tests/integration -q

# Regenerate the committed artefacts (event schema, rules, dashboards).
generate: setup
	$(BIN)/python -m hotline_kpi.ingest.events
	$(BIN)/hotline-kpi rules --output alerts/rules/hotline-kpi.rules.yml
	$(BIN)/hotline-kpi dashboards build --output dashboards/json
