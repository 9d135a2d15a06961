#!/usr/bin/env python3
"""Generate data/mvp/examples.jsonl: 60 labeled reviews to learn from, none of them in reviews.jsonl.

The same generator as scripts/make_mvp_data.py (its templates and products), seeded differently:
4 reviews per sentiment x topic cell, one of each non-price cell's 4 mentioning price. They are the
labeled pool of configs/mvp.yaml's embedding classifiers (`examples:`), as a user's hand-labeled
seed set would be. Deterministic; Python 3.11 standard library only.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import make_mvp_data as mvp

SEED = mvp.SEED + 1
ROWS_PER_CELL = 4
PRICE_MENTIONS_PER_NONPRICE_CELL = 1
OUT = mvp.OUT_DIR / "examples.jsonl"


def build_rows() -> list[dict]:
    rng = random.Random(SEED)
    # Texts of the rows to label are taken, so no example is a row of the demo.
    seen = {r["text"] for r in mvp.build_rows()}
    mvp.ROWS_PER_CELL = ROWS_PER_CELL
    mvp.PRICE_MENTIONS_PER_NONPRICE_CELL = PRICE_MENTIONS_PER_NONPRICE_CELL
    mvp.SPECIAL_ROWS = []
    rows: list[dict] = []
    for sentiment in mvp.SENTIMENTS:
        for topic in mvp.TOPICS:
            rows.extend(mvp.make_cell(rng, sentiment, topic, seen))
    rng.shuffle(rows)
    return [{"id": f"e{i:03d}", **r} for i, r in enumerate(rows, start=1)]


def main() -> None:
    rows = build_rows()
    assert len(rows) == 60 and len({r["text"] for r in rows}) == 60
    for r in rows:
        assert bool(mvp.PRICE_RE.search(r["text"])) == r["mentions_price"], r
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(rows)} rows to {OUT.relative_to(mvp.ROOT)}")
    for key in ("sentiment", "topic", "mentions_price"):
        print(key + ":", dict(sorted(Counter(str(r[key]).lower() for r in rows).items())))


if __name__ == "__main__":
    main()
