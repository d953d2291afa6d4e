# Two commands do everything on a fresh clone (see README.md):
#   make repro   create .venv, install the pinned dependencies, run the whole pipeline
#   make test    create .venv, install the pinned dependencies, run the whole test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install repro test check verify bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Ends by comparing the run with the committed one: byte for byte, or else every test metric against the
# committed run's 95 % interval (README.md, "Reproducibility", says which to expect on which CPUs).
repro: install
	$(BIN)/dvc repro
	@sed -n '/^| model/,/^$$/p' metrics/report.md
	@echo "Report: metrics/report.md   Plots: plots/ (PNG) and 'dvc plots show' (HTML)"
	@$(BIN)/python -m cosmic.commands.reproduce

# Validates params.yaml in seconds; add overrides as they would go to `dvc exp run`:
#   make check S="train_baseline.epochs=3 base.cpu_isa=avx2"
check: install
	$(BIN)/cosmic-check-params $(foreach s,$(S),-S $(s))

# Rehashes every output in dvc.lock and its DVC cache object; prints the command that repairs each mismatch.
verify: install
	$(BIN)/cosmic-verify

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_synthetic.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_determinism.py speed

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
