# Every target sets itself up: it creates .venv when missing and installs the kit into it.
PYTHON ?= python3
# make test: pytest-xdist workers
TEST_WORKERS ?= 2
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test test-system test-all lint format reproduce smoke lab bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@# once per environment: importing umap-learn compiles pynndescent's numba functions into their
	@# on-disk cache (about 40 s); every later process, a test or notebook 04, loads them from it
	$(BIN)/python -c "import umap"
	@# the kernel the notebooks declare ("tanlib": this environment's Python), for JupyterLab, nbval, papermill
	$(BIN)/python -m ipykernel install --sys-prefix --name tanlib --display-name "Python (tanlib)" >/dev/null
	@touch $@

venv: $(STAMP)

# -p no:nbval: the nbval test starts its own pytest; the plugin would import nbformat and jupyter_client here
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -p no:nbval

## the test suite after the linter, two workers (pytest-xdist, one core each), all but the system tests
test: lint
	$(PYTEST) -m "not system"

## the system tests: the killed and resumed smoke pipeline with nbval and notebooks 01/04 in JupyterLab in headless
## Chromium (Debian chromium + chromium-driver; .ci/run installs them), the SLURM sweep through submitit, tan verdict
## end to end at toy scale
test-system: $(STAMP)
	$(PYTEST) -m system

## everything in one session (CI runs make test, then make test-system)
test-all: lint
	$(PYTEST)

## ruff: lint and format check (make format rewrites)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## the main job: SynthFER -> train ce and tan -> evaluate -> embeddings -> report (quick preset)
reproduce: $(STAMP)
	$(BIN)/tan run --preset quick

## the same pipeline at smoke scale (under two minutes on 2 idle cores)
smoke: $(STAMP)
	$(BIN)/tan run --preset smoke

## JupyterLab on the numbered notebooks, in the project's environment: the notebooks declare its kernel
## "Python (tanlib)" (installed into .venv by the venv step; refreshed here)
lab: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name tanlib --display-name "Python (tanlib)" >/dev/null
	$(BIN)/jupyter lab notebooks/

## the benchmarks of bench/ (JSON under bench/results/)
bench: $(STAMP)
	$(BIN)/tan bench

clean-venv:
	rm -rf $(VENV)
