# Every target creates and reuses the local virtual environment in .venv.
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Offscreen rendering through EGL (Mesa's software rasteriser on machines without a GPU).
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup system-deps test test-fast lint demo pretrain-cpu bench clean-venv

setup: $(STAMP) system-deps

# The robot-side client is its own package (numpy + websockets + msgpack, no torch); the
# server imports its protocol, so the dev venv gets it too.
$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -e client
	$(PYTHON) -m pip install -e ".[test]"
	touch $(STAMP)

system-deps:
	@bash scripts/install_system_deps.sh

# Tests run in PYTEST_WORKERS processes (pytest-xdist) of one thread each (two threads per worker
# thrash on two cores), one file per worker so module fixtures are built once, files in the order
# tests/conftest.py gives: heaviest first (xdist's own reorder puts the files with the most tests
# first, which can leave a 3-minute simulator file for last). Stores and tiny runs shared across
# files are built once per run (tests/shared.py).
PYTEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Lint first (seconds), then the whole suite. pytest exits 5 when it collected no tests: that is a
# failure, not a pass.
test: setup lint
	@$(PYTEST); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The fast tier for local iteration: everything not marked slow (no simulator rollouts, no training runs).
test-fast: setup
	@$(PYTEST) -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# make demo looks through two cameras, agentview and the wrist camera, and learns from DART demos
# (the scripted expert's executed actions perturbed, per episode with a std drawn from U[0, 0.3],
# the clean action recorded as the label): see docs/RESULTS.md, "The vision ladder".
DEMO_STORE := data/cube_pick_224_2cam_dart.zarr
DEMO_WEIGHTS := runs/pretrain/demo/encoder.pt

$(DEMO_STORE):
	$(PYTHON) scripts/collect_demos.py env.image_size=224 'env.cameras=[agentview,robot0_eye_in_hand]' n_episodes=150 expert.dart_noise=0.3 expert.dart_per_episode=true store=$(DEMO_STORE)

# Single-scale MAE on the store's agentview frames, 1000 steps (~4 min); skipped once the encoder
# exists. (Pre-training on both cameras' frames, data.cameras=[...], picked worse: see RESULTS.)
$(DEMO_WEIGHTS): | $(DEMO_STORE)
	$(PYTHON) scripts/pretrain_mae.py +pretrain=cpu scales=[1] train.steps=1000 'data.stores=[$(DEMO_STORE)]' hydra.run.dir=runs/pretrain/demo

# Offline end to end on the CPU: demos -> MAE-pre-trained ViT-Ti -> cached S² features of both
# cameras -> head -> 20 evaluation episodes with videos.
demo: setup $(DEMO_WEIGHTS)
	OMP_NUM_THREADS=1 $(PYTHON) train_policy.py +experiment=demo_cpu_2cam data.store=$(DEMO_STORE) encoder.weights=$(DEMO_WEIGHTS)

# MAE pre-training of a ViT-Ti at 64 px with S² [1,2] on the demo store's agentview frames: <= 30 min.
pretrain-cpu: setup | $(DEMO_STORE)
	$(PYTHON) scripts/pretrain_mae.py +pretrain=cpu 'data.stores=[$(DEMO_STORE)]' hydra.run.dir=runs/pretrain/cpu

bench: setup
	$(PYTHON) scripts/bench_encoder.py

clean-venv:
	rm -rf $(VENV)
