# Two set-up-and-go targets: `make run` (the main job) and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench pretrained clean

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

# Quick benchmarks (minutes); bench/rl_steps_to_success.py takes hours and is run by hand.
bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,bench]"
	MUJOCO_GL=egl $(BIN)/python bench/sim_speed.py
	MUJOCO_GL=egl $(BIN)/python bench/experts.py
	$(BIN)/python bench/sac_speed.py
	MUJOCO_GL=egl $(BIN)/python bench/pixel_collection.py
	MUJOCO_GL=egl $(BIN)/python bench/pixel_updates.py

# The small policies shipped in src/tidyarm/pretrained/ (used by `tidyarm eval --policy pretrained:<task>`).
# Each is trained by the train command with the flags below and published with that command recorded.
# (batch 256: the default when these were made)
PRETRAINED_FLAGS_reach := --total-steps 15000 --batch-size 256
PRETRAINED_FLAGS_lift := --total-steps 100000 --batch-size 256
PRETRAINED_FLAGS_place := --total-steps 100000 --demos 200 --batch-size 256
pretrained: pretrained-reach pretrained-lift pretrained-place pretrained-lift-pixels

# The image policy (visual SAC from 32-px wrist + front cameras, about 50 minutes on 2 cores).
PIXEL_FLAGS := --algo vsac --obs pixels --total-steps 50000 --vsac.batch-size 128 --vsac.update-every 2 --threads 1
pretrained-lift-pixels: $(STAMP)
	MUJOCO_GL=egl $(BIN)/tidyarm train --task lift $(PIXEL_FLAGS) --run-dir runs/pretrained-lift-pixels
	$(BIN)/python -c "from pathlib import Path; from tidyarm.rl.policy_io import publish_policy; \
	  publish_policy(Path('runs/pretrained-lift-pixels'), Path('src/tidyarm/pretrained/lift-pixels'), \
	  'tidyarm train --task lift $(PIXEL_FLAGS) --run-dir runs/pretrained-lift-pixels')"

pretrained-%: $(STAMP)
	MUJOCO_GL=egl $(BIN)/tidyarm train --task $* $(PRETRAINED_FLAGS_$*) --run-dir runs/pretrained-$*
	$(BIN)/python -c "from pathlib import Path; from tidyarm.rl.policy_io import publish_policy; \
	  publish_policy(Path('runs/pretrained-$*'), Path('src/tidyarm/pretrained/$*'), \
	  'tidyarm train --task $* $(PRETRAINED_FLAGS_$*) --run-dir runs/pretrained-$*')"

clean:
	rm -rf $(VENV) runs
