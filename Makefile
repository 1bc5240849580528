# Every target creates and reuses the local virtual environment in .venv.
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Offscreen rendering through EGL (Mesa's software rasteriser on machines without a GPU).
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup system-deps test demo pretrain-cpu bench clean-venv

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

# pytest exits 5 when it collected no tests: that is a failure, not a pass.
test: setup
	@$(PYTHON) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

DEMO_STORE := data/demo_cpu_64.zarr
DEMO_WEIGHTS := runs/pretrain/demo/encoder.pt

$(DEMO_STORE):
	$(PYTHON) scripts/collect_demos.py env.image_size=64 n_episodes=50 store=$(DEMO_STORE)

# Single-scale MAE, 1000 steps (~5 min); skipped once the encoder exists.
$(DEMO_WEIGHTS): | $(DEMO_STORE)
	$(PYTHON) scripts/pretrain_mae.py +pretrain=cpu scales=[1] train.steps=1000 hydra.run.dir=runs/pretrain/demo

# Offline end to end on the CPU: demos -> MAE-pre-trained ViT-Ti -> cached S² features -> head -> evaluation.
demo: setup $(DEMO_WEIGHTS)
	OMP_NUM_THREADS=1 $(PYTHON) train_policy.py +experiment=demo_cpu

# MAE pre-training of the CPU demo's encoder (ViT-Ti at 64 px, S² [1,2]) on its demo frames: <= 30 min.
pretrain-cpu: setup | $(DEMO_STORE)
	$(PYTHON) scripts/pretrain_mae.py +pretrain=cpu hydra.run.dir=runs/pretrain/cpu

bench: setup
	$(PYTHON) scripts/bench_encoder.py

clean-venv:
	rm -rf $(VENV)
