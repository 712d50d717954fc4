# The two commands of the README:
#   make demo   — set everything up (.venv) and run the main job on the embedded synthetic corpus
#   make test   — set everything up (.venv) and run the test suite (what CI runs)
# Variables: CORES (default 2), TARGET (default all), PYTHON (default python3.11 or python3).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
CORES ?= 2
TARGET ?= all
BIN := $(VENV)/bin
STAMP := $(VENV)/.sslfer-installed

.PHONY: setup demo test lint clean-results

setup: $(STAMP)

$(STAMP): envs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# pip 23.2.1 (Python 3.11's own): newer pips' `pip check` rejects decord 0.6.0, whose wheel file is
	# named py3-none-manylinux2010 but whose metadata still says cp36 (an upstream packaging slip)
	$(BIN)/python -m pip install "pip==23.2.1"
	$(BIN)/python -m pip install -r envs/requirements.txt
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

demo: setup
	$(BIN)/snakemake --cores $(CORES) $(TARGET)

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results logs resources/synth .snakemake
