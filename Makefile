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

run: $(STAMP)
	MUJOCO_GL=egl $(BIN)/tidyarm rollout --task lift --policy expert --episodes 3 --video runs/lift_expert.mp4

test: $(STAMP) lint
	MUJOCO_GL=egl $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	MUJOCO_GL=egl $(BIN)/python bench/sim_speed.py

clean:
	rm -rf $(VENV) runs
