# iformer-mm: make install | make test | make test-slow | make demo
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-slow test-all demo clean

$(STAMP): scripts/install.sh setup.py
	bash scripts/install.sh
	touch $(STAMP)

install: $(STAMP)

# OpenMP threads spin-wait by default; on 2 shared cores that made forwards 5-60x slower
# (measured), so tests run with passive waiting.
PYTEST := OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q --durations=15

# Default suite: < 15 min on 2 cores. Slow end-to-end runs are marked `slow` (see README).
test: $(STAMP)
	$(PYTEST) -m "not slow" tests

test-slow: $(STAMP)
	$(PYTEST) -m slow tests

test-all: $(STAMP)
	$(PYTEST) -m "" tests

demo: $(STAMP)
	$(PY) tools/demo.py --out-dir demo_out

clean:
	rm -rf $(VENV) build *.egg-info
