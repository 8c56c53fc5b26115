# iformer-mm: make install | make test | make test-slow | make demo
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-slow test-all demo clean

$(STAMP): scripts/install.sh setup.py
	bash scripts/install.sh
	touch $(STAMP)

install: $(STAMP)

# Default suite: < 15 min on 2 cores. Slow end-to-end runs are marked `slow` (see README).
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q tests

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q tests

test-all: $(STAMP)
	$(PY) -m pytest -q -m "" tests

demo: $(STAMP)
	$(PY) tools/demo.py --out-dir demo_out

clean:
	rm -rf $(VENV) build *.egg-info
