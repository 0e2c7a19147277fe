# Set-up and entry points. `make quickstart` and `make test` each create .venv and install gsrl first.
PYTHON ?= python3
VENV ?= .venv
# CPU machines: the constraints file pins the local CPU build of torch.
# GPU machines and images: make install CONSTRAINTS=deploy/constraints-gpu.txt
CONSTRAINTS ?= constraints-cpu.txt
# The quickstart's run directory: <run.output_dir>/<name> of configs/quickstart.yaml.
QUICKSTART_RUN ?= runs/quickstart-sider-10shot
export RAY_USAGE_STATS_ENABLED = 0

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[test,agents]"
	touch $@
	@echo "gsrl is installed in $(VENV): put it on the PATH with 'source $(VENV)/bin/activate'"

install: $(VENV)/.installed

# A second `make quickstart` resumes the run it started: it finishes an interrupted run, and reports a
# finished one without running it again.
quickstart: install
	@if [ -f $(QUICKSTART_RUN)/config.yaml ]; then \
		$(VENV)/bin/gsrl train --resume $(QUICKSTART_RUN); \
	else \
		$(VENV)/bin/gsrl train -c configs/quickstart.yaml; \
	fi
	@echo "next: 'source $(VENV)/bin/activate', then the commands of README.md; 'tensorboard --logdir runs'"

test: install
	$(VENV)/bin/python -m pytest -q

.PHONY: install quickstart test
