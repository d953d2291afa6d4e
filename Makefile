# Two commands do everything on a fresh clone (see README.md):
#   make repro   create .venv, install the pinned dependencies, run the whole pipeline
#   make test    create .venv, install the pinned dependencies, run the whole test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install repro test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Ends by comparing the run with the committed metrics: `dvc metrics diff` prints nothing when they match
# (README.md, "Reproducibility", says what is expected to match on which machines).
repro: install
	$(BIN)/dvc repro
	@sed -n '/^| model/,/^$$/p' metrics/report.md
	@echo "Report: metrics/report.md   Plots: plots/ (PNG) and 'dvc plots show' (HTML)"
	@echo "Metrics that differ from the committed ones (dvc metrics diff; nothing listed = none):"
	@$(BIN)/dvc metrics diff --precision 6
	@if git diff --quiet HEAD -- metrics dvc.lock 2>/dev/null; then \
		echo "REPRODUCED: metrics/ and dvc.lock are byte-identical to the commit."; \
	else \
		echo "NOT REPRODUCED byte for byte: see 'git diff --stat -- metrics plots dvc.lock'."; \
	fi

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_synthetic.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_determinism.py speed

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
