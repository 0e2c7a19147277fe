# Set-up and entry points. `make quickstart` and `make test` each create .venv and install gsrl first.
PYTHON ?= python3
VENV ?= .venv
# CPU machines: the constraints file pins the local CPU build of torch.
# GPU machines and images: make install CONSTRAINTS=deploy/constraints-gpu.txt
CONSTRAINTS ?= constraints-cpu.txt
DATA_ROOT ?= $(abspath ../shared/data)
export GSRL_DATA_ROOT ?= $(DATA_ROOT)
export RAY_USAGE_STATS_ENABLED = 0

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[test]"
	touch $@

install: $(VENV)/.installed

quickstart: install
	$(VENV)/bin/gsrl train -c configs/quickstart.yaml

test: install
	$(VENV)/bin/python -m pytest -q

.PHONY: install quickstart test
