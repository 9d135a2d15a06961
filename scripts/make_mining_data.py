#!/usr/bin/env python3
"""Generate the mining demo's data: questions about products with the passage that answers each,
plus a corpus of related passages that answer other questions (the hard negatives to find).

Deterministic (fixed lists, no randomness): running it twice gives byte-identical files. Python
standard library only.

Outputs (relative to the repository root):
    data/mining/pairs.jsonl    id, query, passage (the positive)
    data/mining/corpus.jsonl   id, text (more passages; the positives are added by the stage)
"""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "mining"

PRODUCTS = ["blender", "kettle", "vacuum cleaner", "desk lamp", "coffee grinder", "air fryer"]

# (question template, answer template, near-miss passages that mention the same product and
# topic but answer a different question).
TOPICS = [
    ("How long is the warranty on the {p}?",
     "The {p} comes with a two-year warranty covering defects in materials and workmanship.",
     ["The {p} warranty does not cover damage from drops or spills.",
      "To register the {p} for service, keep the receipt from your purchase."]),
    ("How do I clean the {p}?",
     "Unplug the {p}, wipe the outside with a damp cloth and wash removable parts in warm soapy water.",
     ["Never put the base of the {p} in the dishwasher.",
      "Descale the {p} once a month if your water is hard."]),
    ("How much power does the {p} use?",
     "The {p} draws 1200 watts at full power and under one watt on standby.",
     ["The {p} switches itself off after ten minutes without use.",
      "A power cord of 1.2 metres comes with the {p}."]),
    ("Can I return the {p} if I don't like it?",
     "You can return the {p} within 30 days for a full refund if it is unused and in its box.",
     ["Opened {p} boxes are resold as refurbished items.",
      "Refunds for the {p} go back to the original payment method."]),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pairs, corpus = [], []
    for p_index, product in enumerate(PRODUCTS):
        for t_index, (question, answer, near) in enumerate(TOPICS):
            pairs.append({"id": f"m{p_index}{t_index}", "query": question.format(p=product),
                          "passage": answer.format(p=product)})
            for n_index, text in enumerate(near):
                corpus.append({"id": f"c{p_index}{t_index}{n_index}", "text": text.format(p=product)})
    with open(OUT / "pairs.jsonl", "w", encoding="utf-8") as f:
        for row in pairs:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(OUT / "corpus.jsonl", "w", encoding="utf-8") as f:
        for row in corpus:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(pairs)} pairs and {len(corpus)} corpus passages to {OUT}")


if __name__ == "__main__":
    main()
