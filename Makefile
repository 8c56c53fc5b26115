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
# Two pytest-xdist workers, one test file each at a time (a file's fixtures are built once): the
# suite waits on process start-up and single-threaded exports much of the time, so two workers
# on 2 cores took 15.6 min where one took about 23 (measured, docs/testing.md).
WORKERS ?= 2
PARALLEL := -n $(WORKERS) --dist loadfile

# Default suite: about 15 min on 2 cores. Slow end-to-end runs are marked `slow` (see README).
test: $(STAMP)
	$(PYTEST) $(PARALLEL) -m "not slow" tests

test-slow: $(STAMP)
	$(PYTEST) -m slow tests

test-all: $(STAMP)
	$(PYTEST) -m "" tests

demo: $(STAMP)
	$(PY) tools/demo.py --out-dir demo_out

clean:
	rm -rf $(VENV) build *.egg-info
