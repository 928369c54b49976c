# A fresh machine needs two commands: `make demo` and `make test`. Both create .venv and install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CONSTRAINTS := requirements/constraints.txt
EXTRAS ?= all,dev
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: install demo test test-fast typecheck typecheck-tensorrt bench fuzz clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	# DeepSpeed is a source distribution: build it without its C++/CUDA ops, against the torch installed above.
	case ",$(EXTRAS)," in *,all,*|*,deepspeed,*) DS_BUILD_OPS=0 $(PIP) install --quiet --no-build-isolation -c $(CONSTRAINTS) deepspeed;; esac
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/digits_demo.py --out demo-output

# mypy against tensorrt-stubs: the only check the TensorRT path gets without TensorRT (tools/typecheck_tensorrt.py).
TRT_STUBS := $(VENV)/tensorrt-stubs
$(TRT_STUBS)/.installed: requirements/tensorrt-stubs.txt $(STAMP)
	$(PIP) install --quiet --no-deps --target $(TRT_STUBS) -r requirements/tensorrt-stubs.txt
	touch $@

typecheck-tensorrt: $(TRT_STUBS)/.installed
	$(PY) tools/typecheck_tensorrt.py

test: $(STAMP) typecheck-tensorrt
	bash tools/setup_test_env.sh
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not aarch64" tests

# The fuzzed intake, longer: hypothesis with a random seed and EDGE_SDK_FUZZ_EXAMPLES examples per test (`make test`
# runs the same tests with a small fixed budget), then atheris, coverage-guided, FUZZ_SECONDS per target.
EDGE_SDK_FUZZ_EXAMPLES ?= 2000
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	EDGE_SDK_FUZZ_EXAMPLES=$(EDGE_SDK_FUZZ_EXAMPLES) $(PY) -m pytest -q tests/fuzz
	for target in tflite npz results npy h5config pipeline manifest; do $(PY) tests/fuzz/atheris_intake.py $$target -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; done

bench: $(STAMP)
	$(PY) tools/bench/runner_overhead.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
