# The README's two commands: `make demo` and `make test`.
SWIFT ?= swift
BIN := .build/debug/labelforge

.PHONY: setup build demo test docs-check install clean-runs

# make install: a release labelforge in $(PREFIX)/bin, its runtime files (the engine's Python
# environment, the launcher, the default models) in $(DATA_DIR), shell completions.
PREFIX ?= $(HOME)/.local
DATA_HOME := $(if $(XDG_DATA_HOME),$(XDG_DATA_HOME),$(HOME)/.local/share)
DATA_DIR ?= $(DATA_HOME)/labelforge
CONFIG_HOME := $(if $(XDG_CONFIG_HOME),$(XDG_CONFIG_HOME),$(HOME)/.config)
# INSTALL_BIN: install this already built binary instead of building a release one (the tests do).
INSTALL_BIN ?=

setup:
	@scripts/setup.sh

build:
	$(SWIFT) build

demo: setup build
	$(BIN) run --config configs/mvp.yaml

test: setup
	@scripts/test_deps.sh
	$(SWIFT) build --build-tests
	@scripts/check_docs.sh
	@scripts/check_function_length.py
	@LABELFORGE_BIN=$(CURDIR)/$(BIN) SWIFT="$(SWIFT)" scripts/run_tests.sh

install:
	$(if $(INSTALL_BIN),,$(SWIFT) build -c release --product labelforge)
	install -d "$(PREFIX)/bin" "$(DATA_DIR)/scripts"
	install -m 755 "$(if $(INSTALL_BIN),$(INSTALL_BIN),$$($(SWIFT) build -c release --show-bin-path)/labelforge)" "$(PREFIX)/bin/labelforge"
	install -m 755 scripts/setup.sh scripts/llama_server.py scripts/engine_process.py scripts/embedding_server.py \
		scripts/minilm_to_gguf.py scripts/minilm_to_onnx.py scripts/ray_driver.py scripts/parquet_io.py \
		"$(DATA_DIR)/scripts/"
	git rev-parse HEAD > "$(DATA_DIR)/REVISION" 2>/dev/null || rm -f "$(DATA_DIR)/REVISION"
	"$(DATA_DIR)/scripts/setup.sh"
	install -d "$(DATA_HOME)/bash-completion/completions" "$(DATA_HOME)/zsh/site-functions" "$(CONFIG_HOME)/fish/completions"
	"$(PREFIX)/bin/labelforge" --generate-completion-script bash > "$(DATA_HOME)/bash-completion/completions/labelforge"
	"$(PREFIX)/bin/labelforge" --generate-completion-script zsh > "$(DATA_HOME)/zsh/site-functions/_labelforge"
	"$(PREFIX)/bin/labelforge" --generate-completion-script fish > "$(CONFIG_HOME)/fish/completions/labelforge.fish"
	@echo "installed: $(PREFIX)/bin/labelforge (runtime files in $(DATA_DIR))"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "warning: $(PREFIX)/bin is not on PATH; add it: export PATH=\"$(PREFIX)/bin:\$$PATH\"";; esac
	@[ "$(DATA_DIR)" = "$(DATA_HOME)/labelforge" ] || echo "note: set LABELFORGE_DATA_DIR=$(DATA_DIR) for labelforge to find its runtime files"

# The library modules' API docs (DocC), failing on any DocC warning; part of `make test`.
docs-check:
	@scripts/check_docs.sh

clean-runs:
	rm -rf runs
