# The two commands of the README. Each builds .venv from nothing but Python.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/descend: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

## demo: race six first-order methods on Rosenbrock; table on screen, plot in race.png
demo: $(BIN)/descend
	$(BIN)/descend compare rosenbrock --methods gd,momentum,nesterov,adagrad,rmsprop,adam --plot race.png

## test: the import contracts (layers, no cycles, nothing imports the face), the type
## check (mypy, [tool.mypy] in pyproject.toml), then the whole test suite (fails on zero
## tests). Two pytest workers, each torch process on one thread: workers x threads = cores,
## no oversubscription (3.4 min against 6.5 min here)
test: $(BIN)/descend
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy src/descend
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

lint: $(BIN)/descend
	$(BIN)/ruff check src tests benchmarks

bench: $(BIN)/descend
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
