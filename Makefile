# The README's two commands: `make demo` and `make test`.
SWIFT ?= swift
BIN := .build/debug/labelforge

.PHONY: setup build demo test clean-runs

setup:
	@scripts/setup.sh

build:
	$(SWIFT) build

demo: setup build
	$(BIN) run --config configs/mvp.yaml

test: setup
	@[ -x .venv/bin/cffconvert ] || .venv/bin/python3 -m pip --disable-pip-version-check -q install "cffconvert==2.0.0"
	$(SWIFT) build --build-tests
	LABELFORGE_BIN=$(CURDIR)/$(BIN) $(SWIFT) test --skip-build

clean-runs:
	rm -rf runs
