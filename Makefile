# Two set-up-and-go targets: `make run` (the main job) and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# Train Lift from state with the default config, then evaluate it on 100 unseen seeds. Leaves the
# checkpoint, policy, learning curve, metrics, TensorBoard logs, eval video and results in runs/lift.
run: $(STAMP)
	MUJOCO_GL=egl $(BIN)/tidyarm train --task lift --run-dir runs/lift
	MUJOCO_GL=egl $(BIN)/tidyarm eval runs/lift --episodes 100

test: $(STAMP) lint
	MUJOCO_GL=egl $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	MUJOCO_GL=egl $(BIN)/python bench/sim_speed.py

clean:
	rm -rf $(VENV) runs
